package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/deploy/examples"
	"github.com/tokenproxy/tokenproxy/policy"
)

func TestQuickstartIsValid(t *testing.T) {
	c, err := policy.Parse(examples.Quickstart, "quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example must show the defaults it claims to show.
	d := policy.Defaults()
	if c.Tokens != d.Tokens || c.Rewrite != d.Rewrite || c.Keys.Provider != d.Keys.Provider || c.Keys.Vault.Timeout != d.Keys.Vault.Timeout || c.Log != d.Log || c.DataDir != d.DataDir {
		t.Fatalf("quickstart differs from Defaults():\n%+v\n%+v", c, d)
	}
	if c.RelayDomain != "relay.company.example" || len(c.Mailboxes) != 1 || c.Mailboxes[0].CRM != "support@crm.example" {
		t.Fatalf("quickstart = %+v", c)
	}
}

const base = `
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
`

func TestValidationNamesFieldAndReason(t *testing.T) {
	tests := []struct{ extra, field, reason string }{
		{"tokens: {length: 8}", "tokens.length", "16 (80 bits) to 52"},
		{"tokens: {prefix: T1}", "tokens.prefix", "lower-case letters"},
		{"tokens: {local_part_case: upper}", "tokens.local_part_case", "fold or preserve"},
		{"keys: {provider: hsm}", "keys.provider", "local or vault"},
		{"keys: {provider: vault}", "keys.vault.address", "http(s) URL"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle}}}", "keys.vault.auth.approle.role_id", "exactly one"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle, approle: {role_id: x}}}}", "keys.vault.auth.approle.secret_id_file", "secret_id"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: kerberos}}}", "keys.vault.auth.method", "token or approle"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', timeout: -1s}}", "keys.vault.timeout", "positive"},
		{"log: {level: loud}", "log.level", "debug, info"},
		{"rewrite: {display_names: hide}", "rewrite.display_names", "keep, pseudonymize or drop"},
		{"rewrite: {unscannable: pass}", "rewrite.unscannable", "reject or headers-only"},
		{"rewrite: {limits: {max_mime_depth: 0}}", "rewrite.limits.max_mime_depth", "at least 1"},
		{"rewrite: {limits: {max_text_part_bytes: 100000000}}", "rewrite.limits.max_text_part_bytes", "must not exceed"},
		{"tokenz: {}", "(file)", "field tokenz not found"},
		{"data_dir: ''", "data_dir", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			var fe *policy.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, policy.ErrConfig) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) || !strings.Contains(err.Error(), "test.yaml") {
				t.Fatalf("err = %v, want field %s and reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
}

func TestValidationDomainsAndMailboxes(t *testing.T) {
	tests := []struct{ yaml, field string }{
		{"relay_domain: Relay.Example\ninternal_domains: [company.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "relay_domain"},
		{"relay_domain: relay.example\ninternal_domains: []\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "internal_domains"},
		{"relay_domain: relay.example\ninternal_domains: [relay.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}]", "internal_domains[0]"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: []", "mailboxes"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: a@elsewhere.example, crm: b@company.example}]", "mailboxes[0].public"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: 'A <a@company.example>', crm: b@company.example}]", "mailboxes[0].public"},
		{"relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}, {public: a@company.example, crm: c@company.example}]", "mailboxes[1].public"},
	}
	for _, tt := range tests {
		_, err := policy.Parse([]byte(tt.yaml), "t.yaml")
		var fe *policy.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want field %s", tt.yaml, err, tt.field)
		}
	}
}

func TestRedactedHidesRoleID(t *testing.T) {
	c, err := policy.Parse([]byte(base+"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200', auth: {method: approle, approle: {role_id: s3cr3t-role, secret_id_file: /run/x}}}}"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out := c.Redacted(); strings.Contains(out, "s3cr3t-role") || !strings.Contains(out, "relay.company.example") {
		t.Fatalf("Redacted:\n%s", out)
	}
}
