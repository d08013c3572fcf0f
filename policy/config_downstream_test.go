package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

// TestDownstreamTargetsAndIdentity: the forms of a downstream (address,
// addresses, mx), AUTH and client certificates are checked with the
// field's name and a reason; the single address of older files still
// works (backward compatible).
func TestDownstreamTargetsAndIdentity(t *testing.T) {
	bad := []struct{ extra, field, reason string }{
		{"outbound: {downstream: {address: 'a.example:25', addresses: ['b.example:25']}}", "outbound.downstream", "exactly one of address"},
		{"outbound: {downstream: {addresses: ['a.example:25'], mx: crm.example}}", "outbound.downstream", "exactly one of address"},
		{"outbound: {downstream: {addresses: ['a.example']}}", "outbound.downstream.addresses[0]", "host:port"},
		{"outbound: {downstream: {addresses: ['a.example:25', 'a.example:25']}}", "outbound.downstream.addresses[1]", "listed twice"},
		{"inbound: {downstream: {mx: CRM.Example}}", "inbound.downstream.mx", "lower-case ASCII domain"},
		{"inbound: {downstream: {mx: crm.example, mx_port: 70000}}", "inbound.downstream.mx_port", "1-65535"},
		{"inbound: {downstream: {addresses: ['a.example:25'], mx_port: 25}}", "inbound.downstream.mx_port", "only with mx"},
		{"inbound: {downstream: {mx: crm.example, tls: insecure}}", "inbound.downstream.tls", "would expose every message"},
		{"outbound: {downstream: {addresses: ['127.0.0.1:25', '10.0.0.5:25'], tls: insecure}}", "outbound.downstream.tls", "10.0.0.5"},
		{"outbound: {downstream: {auth: {username: relay}}}", "outbound.downstream.auth", "exactly one of password_file and password_credential"},
		{"outbound: {downstream: {auth: {username: relay, password_file: /p, password_credential: p}}}", "outbound.downstream.auth", "exactly one"},
		{"outbound: {downstream: {auth: {password_file: /p}}}", "outbound.downstream.auth.username", "must be set"},
		{"outbound: {downstream: {auth: {username: relay, password_credential: ../p}}}", "outbound.downstream.auth.password_credential", "not a path"},
		{"outbound: {downstream: {address: '127.0.0.1:25', tls: insecure, auth: {username: relay, password_file: /p}}}", "outbound.downstream.tls", "need tls: verify"},
		{"outbound: {downstream: {address: '127.0.0.1:25', tls: insecure, client_cert_file: /c.pem, client_key_file: /k.pem}}", "outbound.downstream.tls", "need tls: verify"},
		{"outbound: {downstream: {client_cert_file: /c.pem}}", "outbound.downstream", "both client_cert_file and client_key_file"},
		{"inbound: {downstream: {eight_bit: strip}}", "inbound.downstream.eight_bit", "convert or refuse"},
	}
	for _, tt := range bad {
		_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
		var fe *policy.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
			t.Errorf("%s: err = %v, want field %s and reason containing %q", tt.extra, err, tt.field, tt.reason)
		}
	}
	for _, extra := range []string{
		"outbound: {downstream: {address: 'smtp.company.example:587'}}",
		"outbound: {downstream: {addresses: ['smtp1.company.example:587', 'smtp2.company.example:587'], auth: {username: relay, password_file: /etc/tokenproxy/smarthost.pw}}}",
		"outbound: {downstream: {address: 'smtp.office365.example:25', client_cert_file: /c.pem, client_key_file: /k.pem}}",
		"outbound: {downstream: {address: 'smtp.company.example:587', auth: {username: relay, password_credential: smarthost}}}",
		"inbound: {downstream: {mx: crm.example, eight_bit: refuse}}",
		"inbound: {downstream: {mx: crm.example, mx_port: 2525}}",
	} {
		c, err := policy.Parse([]byte(base+extra), "t.yaml")
		if err != nil {
			t.Errorf("%s: %v", extra, err)
			continue
		}
		for _, d := range []policy.Downstream{c.Inbound.Downstream, c.Outbound.Downstream} {
			if d.Address != "" && (len(d.Addresses) > 0 || d.MX != "") {
				t.Errorf("%s: the default address stayed beside addresses or mx", extra)
			}
		}
	}
}
