package policy

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/deploy/examples"
)

func quickstart(t *testing.T) *Config {
	t.Helper()
	c, err := Parse(examples.Quickstart, "quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRestartOnlyPathsExist: every restart-only path names a field, so
// keepRestartOnly cannot miss one.
func TestRestartOnlyPathsExist(t *testing.T) {
	v := reflect.ValueOf(Config{})
	for _, p := range restartOnly {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("restart-only path %s: %v", p, r)
				}
			}()
			f := v
			for _, name := range strings.Split(p, ".") {
				f = fieldByYAML(f, name)
			}
		}()
	}
}

func TestChangedPaths(t *testing.T) {
	a := quickstart(t)
	b := quickstart(t)
	if got := Changed(a, b); len(got) != 0 {
		t.Fatalf("Changed of equal configurations = %q", got)
	}
	b.Mailboxes = append(b.Mailboxes, Mailbox{Public: "sales@company.example", CRM: "sales@crm.example"})
	b.SMTP.MaxRecipients = 7
	b.Outbound.AuthUsers = []AuthUser{{Name: "crm", PasswordHash: "x"}}
	b.Log.Level = "debug"
	b.Outbound.ClientNetworks = []string{"10.0.0.0/8"}
	want := []string{"mailboxes", "log.level", "outbound.auth_users", "outbound.client_networks", "smtp.max_recipients"}
	if got := Changed(a, b); !slices.Equal(got, want) {
		t.Fatalf("Changed = %q, want %q", got, want)
	}

	// Records of one list of the same length are compared one by one.
	c := quickstart(t)
	c.Outbound.AuthUsers = []AuthUser{{Name: "crm", PasswordHash: "y"}}
	if got := Changed(b, c); !slices.Contains(got, "outbound.auth_users[0].password_hash") {
		t.Fatalf("Changed = %q", got)
	}
	// Empty and absent lists are the same.
	d := quickstart(t)
	d.Outbound.SPFNetworks = nil
	if got := Changed(a, d); len(got) != 0 {
		t.Fatalf("nil and empty list: Changed = %q", got)
	}
}

// TestReloadKeepsRestartOnly: fields that need a restart keep their running
// values and are reported apart; the rest applies.
func TestReloadKeepsRestartOnly(t *testing.T) {
	running := quickstart(t)
	next := quickstart(t)
	next.DataDir = "/elsewhere"
	next.Tokens.Tenant = "other"
	next.Keys.Vault.Timeout *= 2
	next.Inbound.Listen = "127.0.0.1:2600"
	next.Outbound.Hostname = "other.company.example"
	next.Admin.Listen = "127.0.0.1:9999"
	next.Log.Format = "json"
	next.Log.Level = "warn"
	next.SMTP.MaxRecipients = 3

	cfg, applied, restart, err := Reload(running, next)
	if err != nil {
		t.Fatal(err)
	}
	wantRestart := []string{"data_dir", "tokens.tenant", "keys.vault.timeout", "log.format",
		"inbound.listen", "outbound.hostname", "admin.listen"}
	if !slices.Equal(restart, wantRestart) {
		t.Errorf("restart = %q, want %q", restart, wantRestart)
	}
	if want := []string{"log.level", "smtp.max_recipients"}; !slices.Equal(applied, want) {
		t.Errorf("applied = %q, want %q", applied, want)
	}
	if got := Changed(running, cfg); !slices.Equal(got, applied) {
		t.Errorf("the configuration to run differs from the running one in %q, want %q", got, applied)
	}
	if next.DataDir != "/elsewhere" {
		t.Error("Reload changed its argument")
	}

	// Without restart-only changes, next is run as it is.
	next = quickstart(t)
	next.SMTP.RefusalCode = 451
	cfg, applied, restart, err = Reload(running, next)
	if err != nil || cfg != next || len(restart) != 0 || !slices.Equal(applied, []string{"smtp.refusal_code"}) {
		t.Fatalf("Reload = %p %q %q %v", cfg, applied, restart, err)
	}
}

// TestReloadInvalidWithRunningValues: a file valid alone may not be with
// the running relay domain kept.
func TestReloadInvalidWithRunningValues(t *testing.T) {
	running := quickstart(t)
	next := quickstart(t)
	next.RelayDomain = "tokens.company.example"
	next.InternalDomains = append(next.InternalDomains, "relay.company.example")
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := Reload(running, next)
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "internal_domains") {
		t.Fatalf("Reload = %v", err)
	}
}

func TestSafeReason(t *testing.T) {
	for _, tt := range []struct{ reason, want string }{
		{`must be a plain address like support@company.example, got "jane@x.example"`,
			`must be a plain address like support@company.example, got "…"`},
		{"line 4: cannot unmarshal !!str `hunter2` into int", `line 4: cannot unmarshal !!str "…" into int`},
		{`got "a\"b" and "c"`, `got "…" and "…"`},
		{"must be at least 1, got 0", "must be at least 1, got 0"},
	} {
		e := &FieldError{Field: "f", Reason: tt.reason}
		if got := e.SafeReason(); got != tt.want {
			t.Errorf("SafeReason(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}
