package policy

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DownstreamAuth is the account a route logs in with at its downstream
// (SMTP AUTH PLAIN or LOGIN, RFC 4954), only after verified TLS. The
// password is never in the configuration: it is read from a file, or from
// a systemd credential ($CREDENTIALS_DIRECTORY/<name>, LoadCredential=).
type DownstreamAuth struct {
	Username           string `yaml:"username"`
	PasswordFile       string `yaml:"password_file"`
	PasswordCredential string `yaml:"password_credential"`
}

// Enabled reports whether the route logs in.
func (a DownstreamAuth) Enabled() bool { return a.Username != "" }

// dropDefaultDownstreamAddress: a downstream written with addresses or mx
// but no address must not keep the default address (Defaults() sets one),
// or every such file would fail "set one of address, addresses and mx".
// An address written in the file stays, and check-config says to drop one.
func (c *Config) dropDefaultDownstreamAddress(data []byte) {
	var probe struct {
		Inbound struct {
			Downstream struct {
				Address *string `yaml:"address"`
			} `yaml:"downstream"`
		} `yaml:"inbound"`
		Outbound struct {
			Downstream struct {
				Address *string `yaml:"address"`
			} `yaml:"downstream"`
		} `yaml:"outbound"`
	}
	_ = yaml.Unmarshal(data, &probe) // the strict decode before has passed
	for _, d := range []struct {
		ds      *Downstream
		written bool
	}{
		{&c.Inbound.Downstream, probe.Inbound.Downstream.Address != nil},
		{&c.Outbound.Downstream, probe.Outbound.Downstream.Address != nil},
	} {
		if !d.written && (len(d.ds.Addresses) > 0 || d.ds.MX != "") {
			d.ds.Address = ""
		}
	}
}

// checkDownstreamTargets: exactly one of address, addresses and mx, each
// well formed. It returns the host names, for the loopback check of
// tls: insecure.
func (c *Config) checkDownstreamTargets(field string, d Downstream) ([]string, error) {
	n := 0
	for _, set := range []bool{d.Address != "", len(d.Addresses) > 0, d.MX != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, c.fail(field, "set exactly one of address (host:port), addresses (a list of host:port, tried in order) and mx (a domain)")
	}
	if d.MX != "" {
		if !hostRE.MatchString(strings.TrimSuffix(d.MX, ".")) {
			return nil, c.fail(field+".mx", "must be a lower-case ASCII domain, got %q", d.MX)
		}
		if d.MXPort < 0 || d.MXPort > 65535 {
			return nil, c.fail(field+".mx_port", "must be a port (1-65535, default 25), got %d", d.MXPort)
		}
		return []string{d.MX}, nil
	}
	if d.MXPort != 0 {
		return nil, c.fail(field+".mx_port", "is used only with mx")
	}
	addrs, names := d.Addresses, []string(nil)
	f := func(i int) string { return fmt.Sprintf("%s.addresses[%d]", field, i) }
	if d.Address != "" {
		addrs, f = []string{d.Address}, func(int) string { return field + ".address" }
	}
	seen := map[string]bool{}
	for i, a := range addrs {
		host, err := c.checkHostPort(f(i), a, 1)
		if err != nil {
			return nil, err
		}
		if host == "" {
			return nil, c.fail(f(i), "must name a host, got %q", a)
		}
		if seen[a] {
			return nil, c.fail(f(i), "%q is listed twice", a)
		}
		seen[a] = true
		names = append(names, host)
	}
	return names, nil
}

// checkDownstreamIdentity: AUTH and a client certificate need verified
// TLS (RFC 4954 §4: no password in the clear); the password comes from
// exactly one place; eight_bit is convert or refuse.
func (c *Config) checkDownstreamIdentity(field string, d Downstream) error {
	if (d.ClientCertFile == "") != (d.ClientKeyFile == "") {
		return c.fail(field, "set both client_cert_file and client_key_file, or neither")
	}
	a := d.Auth
	switch {
	case a.Username == "" && (a.PasswordFile != "" || a.PasswordCredential != ""):
		return c.fail(field+".auth.username", "must be set with a password")
	case a.Username != "" && (a.PasswordFile == "") == (a.PasswordCredential == ""):
		return c.fail(field+".auth", "set exactly one of password_file and password_credential (a systemd credential name); the password itself never goes in this file")
	case strings.ContainsAny(a.PasswordCredential, "/\\"):
		return c.fail(field+".auth.password_credential", "must be a credential name (LoadCredential=NAME:…), not a path")
	}
	if d.TLS != "verify" && (a.Enabled() || d.ClientCertFile != "") {
		return c.fail(field+".tls", "auth and client_cert_file need tls: verify: credentials never go over plain or unverified connections")
	}
	switch d.EightBit {
	case "", "convert", "refuse":
	default:
		return c.fail(field+".eight_bit", "must be convert or refuse, got %q", d.EightBit)
	}
	return nil
}
