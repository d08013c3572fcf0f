package mailauth

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

func recordsInput(t *testing.T) RecordsInput {
	rsaK, edK := testKeys(t)
	return RecordsInput{
		SenderDomains: []string{"company.example"},
		SPFNetworks:   []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::25/128")},
		SPFIncludes:   []string{"spf.smarthost.example"},
		DKIMKeys: []DKIMKey{
			{Domain: "company.example", Selector: "tp-rsa", Public: rsaK.Public()},
			{Domain: "company.example", Selector: "tp-ed", Public: edK.Public()},
		},
		DMARCReports: []string{"dmarc-reports@company.example"},
		RelayDomain:  "relay.company.example",
		MX:           []string{"mx1.relay.company.example", "*.relay.company.example"},
		TLSReports:   []string{"mailto:tls-reports@company.example"},
	}
}

func TestRecords(t *testing.T) {
	rsaK, edK := testKeys(t)
	der, _ := x509.MarshalPKIXPublicKey(rsaK.Public())
	recs := Records(recordsInput(t))
	want := []struct{ name, typ, value string }{
		{"company.example", "TXT", "v=spf1 ip4:192.0.2.10 ip4:198.51.100.0/24 ip6:2001:db8::25 include:spf.smarthost.example -all"},
		{"_dmarc.company.example", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc-reports@company.example"},
		{"tp-rsa._domainkey.company.example", "TXT", "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)},
		{"tp-ed._domainkey.company.example", "TXT", "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edK.Public().(ed25519.PublicKey))},
		{"_mta-sts.relay.company.example", "TXT", ""}, // id checked below
		{"https://mta-sts.relay.company.example/.well-known/mta-sts.txt", "HTTPS",
			"version: STSv1\nmode: enforce\nmx: mx1.relay.company.example\nmx: *.relay.company.example\nmax_age: 604800\n"},
		{"_smtp._tls.relay.company.example", "TXT", "v=TLSRPTv1; rua=mailto:tls-reports@company.example"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Name != w.name || r.Type != w.typ || (w.value != "" && r.Value != w.value) || r.Why == "" {
			t.Errorf("record %d = %+v\nwant %s %s %q", i, r, w.name, w.typ, w.value)
		}
	}
	sts := recs[4].Value
	if !strings.HasPrefix(sts, "v=STSv1; id=") || len(strings.TrimPrefix(sts, "v=STSv1; id=")) != 20 {
		t.Errorf("MTA-STS record %q", sts)
	}
	// The id follows the policy: a change of policy changes it.
	in := recordsInput(t)
	in.MTASTSMaxAge = 24 * time.Hour
	if again := Records(in); again[4].Value == sts || !strings.Contains(again[5].Value, "max_age: 86400\n") {
		t.Errorf("policy change kept id %s", again[4].Value)
	}
}

func TestRecordsPartial(t *testing.T) {
	recs := Records(RecordsInput{SenderDomains: []string{"a.example"}, DMARCPolicy: PolicyQuarantine,
		DKIMKeys: []DKIMKey{{Domain: "a.example", Selector: "bad", Public: "not a key"}}})
	if len(recs) != 2 {
		t.Fatalf("records = %+v, want DMARC and the unpublishable DKIM key only", recs)
	}
	if recs[0].Value != "v=DMARC1; p=quarantine" {
		t.Errorf("DMARC = %q", recs[0].Value)
	}
	if recs[1].Value != "" || !strings.Contains(recs[1].Why, "unsupported key type") {
		t.Errorf("bad key record = %+v", recs[1])
	}
}

func TestZoneLine(t *testing.T) {
	long := Record{Name: "s._domainkey.a.example", Type: "TXT", Value: strings.Repeat("x", 300)}
	want := `s._domainkey.a.example. IN TXT "` + strings.Repeat("x", 255) + `" "` + strings.Repeat("x", 45) + `"`
	if got := long.ZoneLine(); got != want {
		t.Errorf("ZoneLine = %s", got)
	}
	if got := (Record{Name: "a.example", Type: "TXT", Value: `v=spf1 -all`}).ZoneLine(); got != `a.example. IN TXT "v=spf1 -all"` {
		t.Errorf("ZoneLine = %s", got)
	}
	if got := (Record{Type: "HTTPS"}).ZoneLine(); got != "" {
		t.Errorf("HTTPS ZoneLine = %q", got)
	}
}

func TestCheckRecords(t *testing.T) {
	recs := Records(recordsInput(t))
	publishAll := func(z *dnstest.Server) {
		for _, r := range recs {
			if r.Type == "TXT" {
				z.TXT(r.Name, r.Value)
			}
		}
	}
	byName := func(name string) Record {
		for _, r := range recs {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no record %s", name)
		return Record{}
	}
	dkim := byName("tp-rsa._domainkey.company.example")
	tests := []struct {
		name   string
		change func(z *dnstest.Server)
		want   map[string]string // record name → problem
	}{
		{"all published", nil, map[string]string{}},
		{"equivalent forms accepted", func(z *dnstest.Server) {
			z.TXT("company.example", "  V=SPF1 ip4:192.0.2.10  ip4:198.51.100.0/24 ip6:2001:db8::25 include:spf.smarthost.example -ALL ", "other-verification=123")
			z.TXT("_dmarc.company.example", "v=DMARC1;rua=mailto:dmarc-reports@company.example;  p=reject;")
			p := strings.TrimPrefix(dkim.Value, "v=DKIM1; k=rsa; p=")
			z.TXT(dkim.Name, "k=rsa; p="+p[:100]+" "+p[100:]) // no v=, p= split by a blank
		}, map[string]string{}},
		{"missing", func(z *dnstest.Server) {
			z.TXT("_dmarc.company.example", "unrelated")
		}, map[string]string{"_dmarc.company.example": "not published"}},
		{"NXDOMAIN", func(z *dnstest.Server) {
			z.Remove("_smtp._tls.relay.company.example")
		}, map[string]string{"_smtp._tls.relay.company.example": "not published"}},
		{"differs", func(z *dnstest.Server) {
			z.TXT("company.example", "v=spf1 ip4:192.0.2.10 ~all")
			z.TXT("_dmarc.company.example", "v=DMARC1; p=none; rua=mailto:dmarc-reports@company.example")
		}, map[string]string{"company.example": "differs", "_dmarc.company.example": "differs"}},
		{"two SPF records", func(z *dnstest.Server) {
			z.TXT("company.example", byName("company.example").Value, "v=spf1 -all")
		}, map[string]string{"company.example": "several records"}},
		{"servfail", func(z *dnstest.Server) {
			z.ServFail("_mta-sts.relay.company.example")
		}, map[string]string{"_mta-sts.relay.company.example": "lookup failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := dnstest.Start(t)
			publishAll(z)
			if tt.change != nil {
				tt.change(z)
			}
			got := map[string]string{}
			for _, m := range CheckRecords(context.Background(), NewResolver(z.Addr, time.Second), recs) {
				got[m.Record.Name] = m.Problem
			}
			if len(got) != len(tt.want) {
				t.Errorf("mismatches = %v, want %v", got, tt.want)
			}
			for name, problem := range tt.want {
				if !strings.HasPrefix(got[name], problem) {
					t.Errorf("%s: problem %q, want %q", name, got[name], problem)
				}
			}
		})
	}
}

func TestCheckRecordsTimeout(t *testing.T) {
	recs := Records(recordsInput(t))
	ms := CheckRecords(context.Background(), NewResolver(dnstest.Blackhole(t), testTimeout), recs[:1])
	if len(ms) != 1 || !strings.HasPrefix(ms[0].Problem, "lookup failed") {
		t.Errorf("mismatches = %+v, want one lookup failure", ms)
	}
}
