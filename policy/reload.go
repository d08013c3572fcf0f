package policy

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// restartOnly are the fields a running proxy cannot take from a reloaded
// file (SIGHUP), as YAML paths; a path covers everything under it. Every
// other field applies to the connections accepted after the reload.
var restartOnly = []string{
	// The token map and the keyring are open.
	"data_dir",
	// The token format and derivation: tokens already issued depend on them.
	"relay_domain", "tokens",
	// The key provider, its Vault login, the unwrapped keys.
	"keys",
	// The log handler (log.level reloads).
	"log.format",
	// Bound sockets.
	"inbound.listen", "outbound.listen", "admin.listen",
	// The names in the greeting, the certificates (a self-signed one is
	// made for them) and the downstream EHLO.
	"inbound.hostname", "outbound.hostname",
	// The certificate files' names; their contents reload.
	"inbound.tls", "outbound.tls",
	// The console is mounted at start, with its sessions' idle timeout.
	"compliance.console",
}

// RestartOnly reports whether a changed field path needs a restart.
func RestartOnly(path string) bool {
	for _, p := range restartOnly {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// Reload compares next, freshly loaded, with the running configuration. It
// returns the configuration to run from now on: next, with the fields that
// need a restart kept at their running values, and the changed paths split
// into those that take effect (applied) and those that wait for a restart
// (restart). Both are sorted as the fields are in Config. The error is a
// *FieldError when next is valid alone but not with the running values
// kept (a new internal domain that is the running relay domain).
func Reload(running, next *Config) (cfg *Config, applied, restart []string, err error) {
	for _, p := range Changed(running, next) {
		if RestartOnly(p) {
			restart = append(restart, p)
		} else {
			applied = append(applied, p)
		}
	}
	if len(restart) == 0 {
		return next, applied, nil, nil
	}
	cfg = keepRestartOnly(next, running)
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, err
	}
	return cfg, applied, restart, nil
}

// keepRestartOnly returns a copy of next whose restart-only fields hold
// running's values.
func keepRestartOnly(next, running *Config) *Config {
	c := *next
	dst, src := reflect.ValueOf(&c).Elem(), reflect.ValueOf(running).Elem()
	for _, p := range restartOnly {
		d, s := dst, src
		for _, name := range strings.Split(p, ".") {
			d, s = fieldByYAML(d, name), fieldByYAML(s, name)
		}
		d.Set(s)
	}
	return &c
}

// fieldByYAML is the field of struct v named name in YAML. restartOnly
// names only fields that exist (TestRestartOnlyPathsExist).
func fieldByYAML(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && yamlName(f) == name {
			return v.Field(i)
		}
	}
	panic(fmt.Sprintf("policy: no field %q in %s", name, t))
}

// Changed lists the YAML paths of the fields that differ between a and b,
// in the order of Config: "smtp.max_recipients", "mailboxes",
// "outbound.auth_users[0].password_hash". Lists of records of one length
// are compared record by record, other lists as a whole. Paths only: they
// are safe to log, the values may not be.
func Changed(a, b *Config) []string {
	var out []string
	diffValue(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	return out
}

func diffValue(a, b reflect.Value, path string, out *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if name := yamlName(f); f.IsExported() && name != "-" {
				diffValue(a.Field(i), b.Field(i), joinPath(path, name), out)
			}
		}
	case reflect.Slice:
		switch {
		case a.Len() != b.Len():
			*out = append(*out, path)
		case a.Type().Elem().Kind() == reflect.Struct:
			for i := range a.Len() {
				diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
			}
		default:
			for i := range a.Len() {
				if !reflect.DeepEqual(a.Index(i).Interface(), b.Index(i).Interface()) {
					*out = append(*out, path)
					return
				}
			}
		}
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// quotedRE matches what a reason quotes from the file: "…" (Go %q) and
// `…` (the YAML decoder's errors).
var quotedRE = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// SafeReason is the reason without the values it quotes from the file: a
// secret typed into the wrong field, an address. It is what a log line
// carries; `proxy check-config` shows the whole reason to the operator.
func (e *FieldError) SafeReason() string {
	return quotedRE.ReplaceAllString(e.Reason, `"…"`)
}
