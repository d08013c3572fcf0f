package policy_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestRelaySettingsRefused(t *testing.T) {
	tests := []struct{ extra, field, reason string }{
		{"inbound: {trusted_relays: [gw.company.example]}", "inbound.trusted_relays[0]", "CIDR prefix"},
		{"inbound: {trusted_relays: [10.0.0.0/33]}", "inbound.trusted_relays[0]", "CIDR prefix"},
		{"inbound: {trusted_relays: [0.0.0.0/0]}", "inbound.trusted_relays[0]", "too wide"},
		{"inbound: {trusted_relays: ['::/0']}", "inbound.trusted_relays[0]", "too wide"},
		{"inbound: {trusted_relays: ['2000::/3']}", "inbound.trusted_relays[0]", "too wide"},
		{"inbound: {auth_check: {trusted_authserv_ids: [gw.company.example]}}", "inbound.auth_check.trusted_authserv_ids", "needs inbound.trusted_relays"},
		{"inbound: {trusted_relays: [10.0.0.0/24], auth_check: {trusted_authserv_ids: ['GW Company']}}", "inbound.auth_check.trusted_authserv_ids[0]", "lower-case authserv-id"},
		{"inbound: {hostname: mx.company.example, trusted_relays: [10.0.0.0/24], auth_check: {trusted_authserv_ids: [mx.company.example]}}", "inbound.auth_check.trusted_authserv_ids[0]", "our own authserv-id"},
		{"inbound: {trusted_relays: [10.0.0.0/24], auth_check: {authserv_id: ar.company.example, trusted_authserv_ids: [ar.company.example]}}", "inbound.auth_check.trusted_authserv_ids[0]", "our own authserv-id"},
		{"inbound: {postmaster: postmaster@elsewhere.example}", "inbound.postmaster", "not in internal_domains"},
		{"inbound: {postmaster: 'Postmaster <pm@company.example>'}", "inbound.postmaster", "plain address"},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			var fe *policy.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("err = %v, want field %s and reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
}

func TestRelaySettingsAccepted(t *testing.T) {
	c, err := policy.Parse([]byte(base+"inbound: {trusted_relays: [10.0.0.1/24, 192.0.2.25, '2001:db8::/48'], postmaster: it-mail@company.example,"+
		" auth_check: {trusted_authserv_ids: [gw.company.example, mx1.corp.company.example]}}"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.0.2.25/32"), netip.MustParsePrefix("2001:db8::/48")}
	if got := c.TrustedRelayPrefixes(); !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedRelayPrefixes = %v, want %v", got, want)
	}
	// The defaults trust nobody.
	d, err := policy.Parse([]byte(base), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.TrustedRelayPrefixes()) != 0 || d.Inbound.Postmaster != "" || len(d.Inbound.AuthCheck.TrustedAuthservIDs) != 0 {
		t.Errorf("defaults trust or deliver something: %+v", d.Inbound)
	}
}
