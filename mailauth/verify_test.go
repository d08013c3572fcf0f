package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

func TestVerifySPF(t *testing.T) {
	z := dnstest.Start(t)
	z.TXT("pass.example", "v=spf1 ip4:192.0.2.1 -all", "google-site-verification=abc")
	z.TXT("soft.example", "v=spf1 ip4:192.0.2.1 ~all")
	z.TXT("neutral.example", "v=spf1 ?all")
	z.TXT("broken.example", "v=spf1 frobnicate:x -all")
	z.TXT("mx.sender.example", "v=spf1 a -all")
	z.A("mx.sender.example", "192.0.2.9")
	z.ServFail("servfail.example")

	tests := []struct {
		name             string
		ip, helo, from   string
		want             Result
		identity, domain string
	}{
		{"pass", "192.0.2.1", "mx.sender.example", "jane@pass.example", ResultPass, "mailfrom", "pass.example"},
		{"fail", "198.51.100.7", "mx.sender.example", "jane@pass.example", ResultFail, "mailfrom", "pass.example"},
		{"softfail", "198.51.100.7", "mx.sender.example", "jane@soft.example", ResultSoftFail, "mailfrom", "soft.example"},
		{"neutral", "198.51.100.7", "mx.sender.example", "jane@neutral.example", ResultNeutral, "mailfrom", "neutral.example"},
		{"none", "192.0.2.1", "mx.sender.example", "jane@nothing.example", ResultNone, "mailfrom", "nothing.example"},
		{"permerror", "192.0.2.1", "mx.sender.example", "jane@broken.example", ResultPermError, "mailfrom", "broken.example"},
		{"temperror servfail", "192.0.2.1", "mx.sender.example", "jane@servfail.example", ResultTempError, "mailfrom", "servfail.example"},
		{"domain case", "192.0.2.1", "mx.sender.example", "jane@PASS.Example", ResultPass, "mailfrom", "pass.example"},
		// RFC 7208 §2.3, §2.4: a null reverse-path checks HELO.
		{"null path: helo pass", "192.0.2.9", "mx.sender.example", "", ResultPass, "helo", "mx.sender.example"},
		{"null path: helo fail", "192.0.2.1", "mx.sender.example", "", ResultFail, "helo", "mx.sender.example"},
		{"null path: address literal", "192.0.2.1", "[192.0.2.1]", "", ResultNone, "helo", "[192.0.2.1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := VerifyInput{ClientIP: net.ParseIP(tt.ip), Helo: tt.helo, MailFrom: tt.from}
			v := verify(t, z, in, testMessage("jane@pass.example"))
			if len(v.SPF) != 1 {
				t.Fatalf("SPF verdicts = %+v, want one", v.SPF)
			}
			got := v.SPF[0]
			if got.Result != tt.want || got.Identity != tt.identity || got.Domain != tt.domain || got.MailFrom != tt.from {
				t.Errorf("SPF = %+v, want %s for %s %s", got, tt.want, tt.identity, tt.domain)
			}
		})
	}
}

func TestVerifyDKIM(t *testing.T) {
	rsaK, edK := testKeys(t)
	z := dnstest.Start(t)
	publishKey(t, z, "company.example", "rsa1", rsaK.Public())
	publishKey(t, z, "company.example", "ed1", edK.Public())
	z.ServFail("tempfail._domainkey.company.example")
	msg := testMessage("support@company.example")

	tamperBody := func(b []byte) []byte { return bytes.Replace(b, []byte("where is"), []byte("WHERE IS"), 1) }
	tamperHeader := func(b []byte) []byte { return bytes.Replace(b, []byte("order 1234"), []byte("order 9999"), 1) }
	// Relaxed canonicalization (RFC 6376 §3.4.2, §3.4.4) tolerates
	// refolding and trailing white space.
	refold := func(b []byte) []byte {
		b = bytes.Replace(b, []byte("Subject: order 1234"), []byte("Subject:   order\r\n 1234"), 1)
		return bytes.Replace(b, []byte("my order?"), []byte("my    order?\t"), 1)
	}
	tests := []struct {
		name, selector string
		key            crypto.Signer
		change         func([]byte) []byte
		want           Result
		alg, reason    string
	}{
		{"rsa pass", "rsa1", rsaK, nil, ResultPass, "rsa-sha256", ""},
		{"ed25519 pass", "ed1", edK, nil, ResultPass, "ed25519-sha256", ""},
		{"relaxed survives refolding", "rsa1", rsaK, refold, ResultPass, "rsa-sha256", ""},
		{"body changed", "rsa1", rsaK, tamperBody, ResultFail, "rsa-sha256", "body hash did not verify"},
		{"signed header changed", "ed1", edK, tamperHeader, ResultFail, "ed25519-sha256", "signature did not verify"},
		{"no key record", "gone", rsaK, nil, ResultPermError, "rsa-sha256", "no key for signature"},
		{"key lookup servfail", "tempfail", rsaK, nil, ResultTempError, "rsa-sha256", "key unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := signed(t, tt.key, "company.example", tt.selector, msg)
			if tt.change != nil {
				m = tt.change(m)
			}
			v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.company.example"}, m)
			if len(v.DKIM) != 1 {
				t.Fatalf("DKIM verdicts = %+v, want one", v.DKIM)
			}
			d := v.DKIM[0]
			if d.Result != tt.want || d.Domain != "company.example" || d.Selector != tt.selector || d.Algorithm != tt.alg || d.Reason != tt.reason {
				t.Errorf("DKIM = %+v, want %s %s s=%s reason %q", d, tt.want, tt.alg, tt.selector, tt.reason)
			}
		})
	}
}

func TestVerifyMultipleSignatures(t *testing.T) {
	rsaK, edK := testKeys(t)
	z := dnstest.Start(t)
	publishKey(t, z, "company.example", "rsa1", rsaK.Public())
	publishKey(t, z, "company.example", "ed1", edK.Public())
	m := signed(t, rsaK, "company.example", "rsa1", testMessage("support@company.example"))
	m = signed(t, rsaK, "unpublished.example", "x", m)
	m = signed(t, edK, "company.example", "ed1", m)

	v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.company.example", MailFrom: "bounce@company.example"}, m)
	want := []struct {
		result           Result
		domain, selector string
	}{
		{ResultPass, "company.example", "ed1"}, // header order: the last signature added is first
		{ResultPermError, "unpublished.example", "x"},
		{ResultPass, "company.example", "rsa1"},
	}
	if len(v.DKIM) != len(want) {
		t.Fatalf("DKIM verdicts = %+v, want %d", v.DKIM, len(want))
	}
	for i, w := range want {
		if d := v.DKIM[i]; d.Result != w.result || d.Domain != w.domain || d.Selector != w.selector {
			t.Errorf("DKIM[%d] = %+v, want %s d=%s s=%s", i, d, w.result, w.domain, w.selector)
		}
	}
}

func TestVerifyDMARC(t *testing.T) {
	rsaK, _ := testKeys(t)
	z := dnstest.Start(t)
	for _, d := range []string{"company.example", "attacker.example", "strict.example"} {
		publishKey(t, z, d, "k", rsaK.Public())
	}
	z.ServFail("k._domainkey.tempkey.example")
	z.TXT("_dmarc.company.example", "v=DMARC1; p=reject")
	z.TXT("_dmarc.victim.example", "v=DMARC1; p=reject; rua=mailto:dmarc@victim.example")
	z.TXT("attacker.example", "v=spf1 ip4:203.0.113.5 -all")
	z.TXT("_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s")
	z.TXT("_dmarc.spf.example", "v=DMARC1; p=quarantine")
	z.TXT("bounces.spf.example", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.victim2.example", "v=DMARC1; p=reject; sp=quarantine")
	z.TXT("_dmarc.sampling.example", "v=DMARC1; p=reject; pct=50")
	z.TXT("_dmarc.tempkey.example", "v=DMARC1; p=reject")
	z.ServFail("_dmarc.dnsfail.example")
	z.TXT("_dmarc.malformed.example", "v=DMARC1; p=bogus")
	z.TXT("_dmarc.helo.example", "v=DMARC1; p=reject")
	z.TXT("mx.helo.example", "v=spf1 ip4:192.0.2.1 -all")

	tests := []struct {
		name                 string
		from, mailFrom, ip   string
		helo                 string
		signDomain           string // "" leaves the message unsigned
		want                 Result
		policy               Policy
		policyDomain         string
		spfAligned, dkimAlig bool
		reject               bool
	}{
		{name: "aligned DKIM passes", from: "support@company.example", mailFrom: "bounce@other.example", ip: "192.0.2.1",
			signDomain: "company.example", want: ResultPass, policy: PolicyReject, policyDomain: "company.example", dkimAlig: true},
		{name: "unaligned DKIM and SPF fail p=reject", from: "ceo@victim.example", mailFrom: "x@attacker.example", ip: "203.0.113.5",
			signDomain: "attacker.example", want: ResultFail, policy: PolicyReject, policyDomain: "victim.example", reject: true},
		{name: "relaxed: subdomain From, organizational record", from: "a@mail.company.example", mailFrom: "a@mail.company.example", ip: "192.0.2.1",
			signDomain: "company.example", want: ResultPass, policy: PolicyReject, policyDomain: "company.example", dkimAlig: true},
		{name: "strict adkim=s refuses the parent's signature", from: "a@mail.strict.example", mailFrom: "a@mail.strict.example", ip: "192.0.2.1",
			signDomain: "strict.example", want: ResultFail, policy: PolicyReject, policyDomain: "strict.example", reject: true},
		{name: "relaxed SPF alignment", from: "a@spf.example", mailFrom: "bounce@bounces.spf.example", ip: "192.0.2.1",
			want: ResultPass, policy: PolicyQuarantine, policyDomain: "spf.example", spfAligned: true},
		{name: "sp= for a subdomain", from: "a@sub.victim2.example", mailFrom: "a@sub.victim2.example", ip: "192.0.2.1",
			want: ResultFail, policy: PolicyQuarantine, policyDomain: "victim2.example"},
		{name: "pct=50 does not reject", from: "a@sampling.example", mailFrom: "a@sampling.example", ip: "192.0.2.1",
			want: ResultFail, policy: PolicyReject, policyDomain: "sampling.example"},
		{name: "no record", from: "a@nodmarc.example", mailFrom: "a@nodmarc.example", ip: "192.0.2.1",
			want: ResultNone},
		{name: "record lookup servfail", from: "a@dnsfail.example", mailFrom: "a@dnsfail.example", ip: "192.0.2.1",
			want: ResultTempError},
		{name: "aligned key unavailable is temperror, not reject", from: "a@tempkey.example", mailFrom: "a@tempkey.example", ip: "192.0.2.1",
			signDomain: "tempkey.example", want: ResultTempError, policy: PolicyReject, policyDomain: "tempkey.example"},
		{name: "malformed record", from: "a@malformed.example", mailFrom: "a@malformed.example", ip: "192.0.2.1",
			want: ResultPermError},
		{name: "null MAIL FROM: HELO identity aligns", from: "a@helo.example", helo: "mx.helo.example", ip: "192.0.2.1",
			want: ResultPass, policy: PolicyReject, policyDomain: "helo.example", spfAligned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage(tt.from)
			if tt.signDomain != "" {
				m = signed(t, rsaK, tt.signDomain, "k", m)
			}
			helo := tt.helo
			if helo == "" {
				helo = "mx.sender.example"
			}
			v := verify(t, z, VerifyInput{ClientIP: net.ParseIP(tt.ip), Helo: helo, MailFrom: tt.mailFrom}, m)
			d := v.DMARC
			if d.Result != tt.want || d.Policy != tt.policy || d.PolicyDomain != tt.policyDomain ||
				d.SPFAligned != tt.spfAligned || d.DKIMAligned != tt.dkimAlig || d.FromDomain != domainOf(tt.from) {
				t.Errorf("DMARC = %+v\nwant %s policy %q at %q, aligned spf %v dkim %v", d, tt.want, tt.policy, tt.policyDomain, tt.spfAligned, tt.dkimAlig)
			}
			if v.DMARCReject() != tt.reject {
				t.Errorf("DMARCReject() = %v, want %v", v.DMARCReject(), tt.reject)
			}
		})
	}
}

func TestVerifyFromField(t *testing.T) {
	z := dnstest.Start(t)
	z.TXT("_dmarc.company.example", "v=DMARC1; p=reject")
	msg := testMessage("a@company.example")
	tests := []struct {
		name   string
		header string
		want   Result
		domain string
	}{
		{"two From fields", "From: a@company.example\r\nFrom: b@company.example\r\n", ResultPermError, ""},
		{"two domains in one From", "From: a@company.example, b@other.example\r\n", ResultPermError, ""},
		{"two addresses, one domain", "From: a@company.example, B <b@COMPANY.example>\r\n", ResultFail, "company.example"},
		{"encoded display name, unknown charset", "From: =?x-unknown?q?Jane?= <a@company.example>\r\n", ResultFail, "company.example"},
		{"folded", "From: Jane\r\n <a@company.example>\r\n", ResultFail, "company.example"},
		{"unparsable", "From: <<<\r\n", ResultPermError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := append([]byte(tt.header), msg[bytes.Index(msg, []byte("To:")):]...)
			v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.example", MailFrom: "x@nowhere.example"}, m)
			if v.DMARC.Result != tt.want || v.DMARC.FromDomain != tt.domain {
				t.Errorf("DMARC = %+v, want %s for %q", v.DMARC, tt.want, tt.domain)
			}
		})
	}
}

// TestVerifyDNSTimeout: a server that never answers makes every method
// temperror, within a few look-up timeouts, without an error.
func TestVerifyDNSTimeout(t *testing.T) {
	rsaK, _ := testKeys(t)
	m := signed(t, rsaK, "company.example", "k", testMessage("a@company.example"))
	r := NewResolver(dnstest.Blackhole(t), testTimeout)
	in := VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.company.example", MailFrom: "a@company.example"}

	begin := time.Now()
	v, err := Verify(context.Background(), r, in, bytes.NewReader(m))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if elapsed := time.Since(begin); elapsed > 8*testTimeout {
		t.Errorf("Verify took %v with a %v look-up timeout", elapsed, testTimeout)
	}
	assertAllTempError(t, v)
	if v.DMARCReject() {
		t.Error("DMARCReject() on a DNS timeout")
	}
}

// TestVerifyCancelled: a context that has ended is a temporary failure too.
func TestVerifyCancelled(t *testing.T) {
	rsaK, _ := testKeys(t)
	z := dnstest.Start(t)
	m := signed(t, rsaK, "company.example", "k", testMessage("a@company.example"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.company.example", MailFrom: "a@company.example"}
	v, err := Verify(ctx, NewResolver(z.Addr, time.Second), in, bytes.NewReader(m))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	assertAllTempError(t, v)
}

func assertAllTempError(t *testing.T, v *Verdicts) {
	t.Helper()
	if len(v.SPF) != 1 || v.SPF[0].Result != ResultTempError {
		t.Errorf("SPF = %+v, want temperror", v.SPF)
	}
	if len(v.DKIM) != 1 || v.DKIM[0].Result != ResultTempError {
		t.Errorf("DKIM = %+v, want temperror", v.DKIM)
	}
	if v.DMARC.Result != ResultTempError {
		t.Errorf("DMARC = %+v, want temperror", v.DMARC)
	}
}

// TestVerifyReadError: only a message that cannot be read is an error.
func TestVerifyReadError(t *testing.T) {
	z := dnstest.Start(t)
	rsaK, _ := testKeys(t)
	m := signed(t, rsaK, "company.example", "k", testMessage("a@company.example"))
	in := VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.example", MailFrom: "a@company.example"}
	for _, cut := range []int{10, len(m) - 10} { // in the header, in the body
		r := io.MultiReader(bytes.NewReader(m[:cut]), iotest.ErrReader(errors.New("connection reset")))
		if _, err := Verify(context.Background(), NewResolver(z.Addr, time.Second), in, r); err == nil {
			t.Errorf("cut at %d: Verify succeeded on a failing reader", cut)
		}
	}
	huge := strings.Repeat("X-Filler: "+strings.Repeat("x", 990)+"\r\n", maxHeaderBytes/1000+1)
	if _, err := Verify(context.Background(), NewResolver(z.Addr, time.Second), in, strings.NewReader(huge)); !errors.Is(err, rawheader.ErrTooLarge) {
		t.Errorf("huge header: err = %v, want rawheader.ErrTooLarge", err)
	}
}
