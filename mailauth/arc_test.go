package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

// arcZone publishes one RSA key for the customer's DKIM and every sealer,
// the customer domain's SPF (only 198.51.100.7 may send) and DMARC
// p=reject.
func arcZone(t testing.TB) (*dnstest.Server, crypto.Signer) {
	t.Helper()
	key, _ := testKeys(t)
	z := dnstest.Start(t)
	for _, d := range []string{"customer.example", "fwd.example", "list.example", "evil.example", "company.example"} {
		publishKey(t, z, d, "arc", key.Public())
	}
	z.TXT("customer.example", "v=spf1 ip4:198.51.100.7 -all")
	z.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	return z, key
}

// forwarderIn is what the forwarder's own check found (its AAR).
const forwarderIn = "fwd.example; spf=pass smtp.mailfrom=customer.example; dkim=pass header.d=customer.example; dmarc=pass header.from=customer.example"

// customerSigned is the customer's message, DKIM-signed by its domain.
func customerSigned(t *testing.T, key crypto.Signer) []byte {
	return signed(t, key, "customer.example", "arc", testMessage("jane@customer.example"))
}

// tagSubject is what a gateway does to external mail.
func tagSubject(m []byte) []byte {
	return bytes.Replace(m, []byte("Subject: order 1234"), []byte("Subject: [EXTERNAL] order 1234"), 1)
}

// arcSealed adds our seal of domain to m, continuing chain.
func arcSealed(t *testing.T, key crypto.Signer, domain string, chain *ARCVerdict, results string, m []byte) []byte {
	t.Helper()
	s := ARCSealer{Domain: domain, Selector: "arc", Key: key}
	seal, err := s.Seal(context.Background(), chain, results, bytes.NewReader(m))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if seal.StripOld {
		m, _ = StripARC(m)
	}
	return append([]byte(seal.Fields), m...)
}

// arcVerify verifies m as received from a forwarder at 192.0.2.1 (not in
// the customer's SPF record), trusting sealers.
func arcVerify(t *testing.T, z *dnstest.Server, m []byte, trusted ...string) *Verdicts {
	t.Helper()
	return verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.fwd.example",
		MailFrom: "jane@customer.example", TrustedARCSealers: trusted}, m)
}

func TestARCSealThenVerify(t *testing.T) {
	z, key := arcZone(t)
	m := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	v := arcVerify(t, z, m)
	if v.ARC.Result != ResultPass || v.ARC.Instances != 1 || v.ARC.OldestPass != 0 {
		t.Fatalf("ARC = %+v, want pass with 1 instance\n%s", v.ARC, m)
	}
	if s := v.ARC.Sets[0]; s.Domain != "fwd.example" || s.Selector != "arc" || s.CV != "none" {
		t.Errorf("set 1 = %+v", s)
	}
	// The next hop continues the chain: i=2, cv=pass.
	m2 := arcSealed(t, key, "list.example", &v.ARC, "list.example; arc=pass", m)
	v2 := arcVerify(t, z, m2)
	if v2.ARC.Result != ResultPass || v2.ARC.Instances != 2 || v2.ARC.Sets[1].CV != "pass" {
		t.Fatalf("ARC = %+v, want pass with 2 instances\n%s", v2.ARC, m2)
	}
	// A change after the newest seal breaks its message signature; one
	// before it (the subject tag above, before instance 1) breaks only the
	// customer's DKIM signature.
	if v.DKIM[0].Result != ResultFail {
		t.Errorf("DKIM after the subject tag = %s, want fail", v.DKIM[0].Result)
	}
}

func TestARCVerifyFailures(t *testing.T) {
	z, key := arcZone(t)
	one := arcSealed(t, key, "fwd.example", nil, forwarderIn, customerSigned(t, key))
	v1 := arcVerify(t, z, one)
	two := arcSealed(t, key, "list.example", &v1.ARC, "list.example; arc=pass", one)
	v2 := arcVerify(t, z, two)
	three := arcSealed(t, key, "company.example", &v2.ARC, "company.example; arc=pass", two)

	tests := []struct {
		name   string
		m      []byte
		result Result
		reason string
	}{
		{"intact", three, ResultPass, ""},
		{"body changed", bytes.Replace(three, []byte("where is"), []byte("where was"), 1), ResultFail, "newest ARC-Message-Signature: body hash did not verify"},
		{"signed field changed", tagSubject(three), ResultFail, "newest ARC-Message-Signature: signature did not verify"},
		{"middle results changed", bytes.Replace(three, []byte("i=2; list.example;\r\n\tarc=pass"), []byte("i=2; list.example;\r\n\tarc=fail"), 1), ResultFail, "ARC-Seal: signature did not verify"},
		{"middle set missing", dropField(three, "ARC-Seal: i=2"), ResultFail, "incomplete ARC set"},
		{"duplicate set", append([]byte(firstFieldStarting(three, "ARC-Seal: i=3")), three...), ResultFail, "duplicate ARC field"},
		{"instance 0", bytes.Replace(three, []byte("ARC-Authentication-Results: i=1;"), []byte("ARC-Authentication-Results: i=0;"), 1), ResultFail, "invalid instance"},
		{"cv=none after 1", bytes.Replace(three, []byte("cv=pass;\r\n\td=list.example"), []byte("cv=none;\r\n\td=list.example"), 1), ResultFail, "invalid cv= value"},
		{"declared failed", bytes.Replace(three, []byte("cv=pass;\r\n\td=company.example"), []byte("cv=fail;\r\n\td=company.example"), 1), ResultFail, "chain declared failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := arcVerify(t, z, tt.m)
			if v.ARC.Result != tt.result || v.ARC.Reason != tt.reason {
				t.Errorf("ARC = %s %q, want %s %q\n%s", v.ARC.Result, v.ARC.Reason, tt.result, tt.reason, tt.m)
			}
		})
	}
}

func TestARCOldestPass(t *testing.T) {
	z, key := arcZone(t)
	one := arcSealed(t, key, "fwd.example", nil, forwarderIn, customerSigned(t, key))
	v1 := arcVerify(t, z, one)
	// The list changes the subject after instance 1, then seals.
	two := arcSealed(t, key, "list.example", &v1.ARC, "list.example; arc=pass", tagSubject(one))
	v := arcVerify(t, z, two)
	if v.ARC.Result != ResultPass || v.ARC.OldestPass != 2 {
		t.Errorf("ARC = %+v, want pass, oldest-pass 2", v.ARC)
	}
}

func TestARCKeyUnavailable(t *testing.T) {
	z, key := arcZone(t)
	m := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	z.ServFail("arc._domainkey.fwd.example")
	v := arcVerify(t, z, m, "fwd.example")
	if v.ARC.Result != ResultTempError || v.DMARC.Result != ResultTempError || v.DMARCReject() {
		t.Errorf("ARC %s, DMARC %s (reject %v): want temperror for both, no reject", v.ARC.Result, v.DMARC.Result, v.DMARCReject())
	}
}

func TestARCTrustedSealer(t *testing.T) {
	z, key := arcZone(t)
	forwarded := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	fv := arcVerify(t, z, forwarded)
	afterEvil := arcSealed(t, key, "evil.example", &fv.ARC, "evil.example; arc=pass", forwarded)
	evilFirst := arcSealed(t, key, "fwd.example", nil, "fwd.example; dkim=fail header.d=customer.example", tagSubject(customerSigned(t, key)))
	tests := []struct {
		name     string
		m        []byte
		trusted  []string
		override string
	}{
		{"trusted sealer", forwarded, []string{"fwd.example"}, "fwd.example"},
		{"trusted, written with a dot and capitals", forwarded, []string{"FWD.example."}, "fwd.example"},
		{"untrusted sealer", forwarded, []string{"other.example"}, ""},
		{"no trusted sealers", forwarded, nil, ""},
		{"untrusted hop after the trusted one", afterEvil, []string{"fwd.example"}, ""},
		{"both trusted", afterEvil, []string{"fwd.example", "evil.example"}, "fwd.example"},
		{"trusted sealer saw a failure", evilFirst, []string{"fwd.example"}, ""},
		{"broken chain", bytes.Replace(forwarded, []byte("where is"), []byte("where was"), 1), []string{"fwd.example"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := arcVerify(t, z, tt.m, tt.trusted...)
			if v.DMARC.Result != ResultFail {
				t.Fatalf("DMARC = %+v, want fail (SPF from a forwarder, DKIM broken by the tag)", v.DMARC)
			}
			if v.DMARC.ARCOverride != tt.override || v.DMARCReject() != (tt.override == "") {
				t.Errorf("override %q reject %v, want %q", v.DMARC.ARCOverride, v.DMARCReject(), tt.override)
			}
			ar := v.AuthenticationResults("mx.company.example", nil)
			if tt.override != "" && !strings.Contains(ar, "policy.arc-sealer="+tt.override+" policy.override=trusted_forwarder") {
				t.Errorf("Authentication-Results do not report the override: %s", ar)
			}
			if tt.override == "" && strings.Contains(ar, "policy.override") {
				t.Errorf("Authentication-Results report an override: %s", ar)
			}
			t.Logf("%s", ar)
		})
	}
}

func TestARCAuthenticationResults(t *testing.T) {
	z, key := arcZone(t)
	m := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	ar := arcVerify(t, z, m, "fwd.example").AuthenticationResults("mx.company.example", nil)
	want := "arc=pass (as.1.d=fwd.example as.1.s=arc, trusted i=1) header.oldest-pass=0"
	if !strings.HasSuffix(ar, "; "+want) {
		t.Errorf("Authentication-Results = %s\nwant it to end with %s", ar, want)
	}
	ar = arcVerify(t, z, testMessage("jane@customer.example")).AuthenticationResults("mx.company.example", nil)
	if strings.Contains(ar, "; arc=") {
		t.Errorf("a message without a chain reports arc: %s", ar)
	}
}

// TestARCSealContinuation: the seal continues the chain only while the
// message still carries it unchanged.
func TestARCSealContinuation(t *testing.T) {
	z, key := arcZone(t)
	in := arcSealed(t, key, "fwd.example", nil, forwarderIn, customerSigned(t, key))
	v := arcVerify(t, z, in)
	s := ARCSealer{Domain: "company.example", Selector: "arc", Key: key}
	tests := []struct {
		name     string
		chain    *ARCVerdict
		m        []byte
		instance int
		strip    bool
	}{
		{"unchanged chain", &v.ARC, in, 2, false},
		{"rewritten chain", &v.ARC, bytes.Replace(in, []byte("smtp.mailfrom=customer.example"), []byte("smtp.mailfrom=relay.company.example"), 1), 1, true},
		{"unverified chain", nil, in, 1, true},
		{"no chain", nil, customerSigned(t, key), 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seal, err := s.Seal(context.Background(), tt.chain, "company.example; arc=pass", bytes.NewReader(tt.m))
			if err != nil {
				t.Fatal(err)
			}
			if seal.Instance != tt.instance || seal.StripOld != tt.strip {
				t.Fatalf("instance %d strip %v, want %d %v", seal.Instance, seal.StripOld, tt.instance, tt.strip)
			}
			m := tt.m
			if seal.StripOld {
				m, _ = StripARC(m)
			}
			out := append([]byte(seal.Fields), m...)
			if got := arcVerify(t, z, out); got.ARC.Result != ResultPass || got.ARC.Instances != tt.instance {
				t.Errorf("sealed message: ARC %+v\n%s", got.ARC, out)
			}
		})
	}
}

// TestARCBodyHashMatchesGoMsgauth checks our body canonicalization against
// go-msgauth's: its DKIM signer's bh= for the same body.
func TestARCBodyHashMatchesGoMsgauth(t *testing.T) {
	key, _ := testKeys(t)
	bodies := []string{"", "\r\n\r\n", "a  b \t\r\n\r\n\r\n", "x\r\n \r\ny", "line\r\n\tindented  \r\n", " a \t\t b\t\r\n", "\t\r\n\r\nz"}
	for _, canon := range []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed} {
		for _, body := range bodies {
			msg := "From: a@example.com\r\n\r\n" + body
			var out bytes.Buffer
			err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.com", Selector: "s", Signer: key, BodyCanonicalization: canon})
			if err != nil {
				t.Fatal(err)
			}
			want := parseTags(splitFields(out.Bytes())[0].value())["bh"]
			h := newBodyHasher(string(canon))
			h.Write([]byte(body))
			if got := b64(h.sum()); got != stripSpace(want) {
				t.Errorf("%s body %q: bh=%s, go-msgauth %s", canon, body, got, want)
			}
		}
	}
}

func TestStripARC(t *testing.T) {
	hdr := []byte("ARC-Seal: i=1; x\r\n\ty\r\nSubject: s\r\narc-message-signature: i=1\r\nARC-Authentication-Results: i=1; a\r\nFrom: f\r\n\r\nbody")
	got, n := StripARC(hdr)
	if string(got) != "Subject: s\r\nFrom: f\r\n\r\nbody" || n != 3 {
		t.Errorf("StripARC = %q, %d", got, n)
	}
}

func dropField(m []byte, prefix string) []byte {
	f := firstFieldStarting(m, prefix)
	return bytes.Replace(m, []byte(f), nil, 1)
}

func firstFieldStarting(m []byte, prefix string) string {
	for _, f := range splitFields(m) {
		if bytes.HasPrefix(f.raw, []byte(prefix)) {
			return string(f.raw)
		}
	}
	panic("no field " + prefix)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestARCVerifiesEd25519Seal: we seal with RSA only, but accept the
// ed25519-sha256 seals of others (RFC 8463 algorithms are DKIM's, which
// ARC's signatures use).
func TestARCVerifiesEd25519Seal(t *testing.T) {
	z, key := arcZone(t)
	_, ed := testKeys(t)
	publishKey(t, z, "ed.example", "arc", ed.Public())
	in := customerSigned(t, key)
	s := ARCSealer{Domain: "ed.example", Selector: "arc", Key: ed}
	if err := s.Check(); err == nil {
		t.Error("Check accepted an Ed25519 sealing key")
	}
	seal, err := s.seal(context.Background(), nil, "ed.example; dkim=pass header.d=customer.example", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(seal.Fields), in...)
	if v := arcVerify(t, z, m); v.ARC.Result != ResultPass || !strings.Contains(string(m), "a=ed25519-sha256;") {
		t.Fatalf("ARC = %+v\n%s", v.ARC, m)
	}
	tampered := bytes.Replace(m, []byte("where is"), []byte("where was"), 1)
	if v := arcVerify(t, z, tampered); v.ARC.Result != ResultFail {
		t.Errorf("a changed body: ARC %s", v.ARC.Result)
	}
}

func TestCanonHeader(t *testing.T) {
	tests := []struct{ raw, canon, want string }{
		{"Subject: a:  b\r\n", canonRelaxed, "subject:a: b\r\n"},
		{"SUBJECT \t:  \t x \r\n\t y\t \r\n", canonRelaxed, "subject:x y\r\n"},
		{"To:\r\n :x\r\n", canonRelaxed, "to::x\r\n"},
		{"Empty:\r\n", canonRelaxed, "empty:\r\n"},
		{"Subject:  a\r\n", canonSimple, "Subject:  a\r\n"},
		{"Subject: a\n", canonSimple, "Subject: a\r\n"},
	}
	for _, tt := range tests {
		if got := string(canonHeader([]byte(tt.raw), tt.canon)); got != tt.want {
			t.Errorf("canonHeader(%q, %s) = %q, want %q", tt.raw, tt.canon, got, tt.want)
		}
	}
}
