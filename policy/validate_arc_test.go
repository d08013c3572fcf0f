package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestValidateARC(t *testing.T) {
	const seal = "arc_seal: {domain: company.example, selector: arc1, key_file: /arc.pem}"
	tests := []struct{ extra, field, reason string }{
		{"inbound: {auth_check: {trusted_arc_sealers: [Gateway.Example]}}", "inbound.auth_check.trusted_arc_sealers[0]", "lower-case"},
		{"inbound: {auth_check: {trusted_arc_sealers: ['gw.example; x']}}", "inbound.auth_check.trusted_arc_sealers[0]", "domain"},
		{"inbound: {auth_check: {enabled: false, trusted_arc_sealers: [gw.example]}}", "inbound.auth_check.trusted_arc_sealers", "enabled: true"},
		{"inbound: {auth_check: {arc_seal: {selector: arc1}}}", "inbound.auth_check.arc_seal.domain", "must be set"},
		{"inbound: {auth_check: {enabled: false, " + seal + "}}", "inbound.auth_check.arc_seal", "enabled: true"},
		{"inbound: {auth_check: {arc_seal: {domain: Company.Example, selector: arc1, key_file: /k.pem}}}", "inbound.auth_check.arc_seal.domain", "lower-case"},
		{"inbound: {auth_check: {arc_seal: {domain: company.example, selector: 'arc 1', key_file: /k.pem}}}", "inbound.auth_check.arc_seal.selector", "DNS labels"},
		{"inbound: {auth_check: {arc_seal: {domain: company.example, selector: arc1}}}", "inbound.auth_check.arc_seal.key_file", "exactly one"},
		{"inbound: {auth_check: {arc_seal: {domain: company.example, selector: arc1, key_file: /k.pem, vault_key: arc}}}", "inbound.auth_check.arc_seal.key_file", "exactly one"},
		{"inbound: {auth_check: {arc_seal: {domain: company.example, selector: arc1, vault_key: arc}}}", "inbound.auth_check.arc_seal.vault_key", "keys.provider: vault"},
		{"keys: {provider: vault, vault: {address: 'http://127.0.0.1:8200'}}\ninbound: {auth_check: {arc_seal: {domain: company.example, selector: arc1, vault_key: a/b}}}", "inbound.auth_check.arc_seal.vault_key", "no slash"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			var fe *policy.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("err = %v, want field %s and reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
	ok := "inbound: {auth_check: {trusted_arc_sealers: [gw.company.example, fwd.example.], " + seal + "}}"
	c, err := policy.Parse([]byte(base+ok), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Inbound.AuthCheck; len(a.TrustedARCSealers) != 2 || a.ARCSeal.Selector != "arc1" {
		t.Errorf("auth_check = %+v", a)
	}
}
