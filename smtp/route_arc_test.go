package smtp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
	"github.com/tokenproxy/tokenproxy/test/tools"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// The forwarding case of ARC (RFC 8617) through the inbound route: Bob at
// example.org (SPF: 192.0.2.1 only, DMARC p=reject) signs his message;
// the company gateway gw.example checks it (dkim=pass), tags its subject,
// which breaks the signature, ARC-seals it and relays it from 127.0.0.1,
// which example.org's SPF does not list. Without ARC, DMARC fails.

var (
	arcKeyOnce sync.Once
	arcRSA     *rsa.PrivateKey
)

// arcTestKey is one RSA key for the gateway's seal and ours (RSA: what
// dkimpy's arcverify knows for ARC).
func arcTestKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	arcKeyOnce.Do(func() {
		var err error
		if arcRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return arcRSA
}

// arcDNS publishes Bob's DKIM key and the ARC keys of the gateway and of
// the proxy (company.example).
func arcDNS(t *testing.T) (*dnstest.Server, func(results string) string) {
	z := authDNS(t)
	bobKey := newEd25519(t)
	publishDKIM(t, z, "example.org", "sel", bobKey.Public())
	key := arcTestKey(t)
	publishDKIM(t, z, "gw.example", "arc", key.Public())
	publishDKIM(t, z, "company.example", "arc1", key.Public())
	signedMsg := dkimSign(t, bobKey, "example.org", "sel", dmarcFailMsg)
	// forwarded is Bob's message as the gateway relays it: subject
	// tagged, then sealed with the gateway's results.
	forwarded := func(results string) string {
		m := strings.Replace(signedMsg, "Subject: hello", "Subject: [EXTERNAL] hello", 1)
		s := mailauth.ARCSealer{Domain: "gw.example", Selector: "arc", Key: key}
		seal, err := s.Seal(context.Background(), nil, results, strings.NewReader(m))
		if err != nil {
			t.Fatal(err)
		}
		return seal.Fields + m
	}
	return z, forwarded
}

// gwResults are the gateway's verdicts: domains only, as Exchange Online
// writes them, so the rewriter leaves the gateway's set unchanged.
const gwResults = "gw.example; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"

func arcHarness(t *testing.T, dnsAddr string, trusted []string, tag bool) *harness {
	return authHarness(t, dnsAddr, func(o *harnessOpts) {
		o.auth.TrustedARCSealers = trusted
		o.auth.TagDMARCReject = tag
		o.auth.ARCSeal = &mailauth.ARCSealer{Domain: "company.example", Selector: "arc1", Key: arcTestKey(t)}
	})
}

// TestInboundARCTrustedSealer: the gateway is trusted, so its sealed
// dkim=pass stands in for the DMARC failure; the message is relayed with
// the override reported, and our seal continues the gateway's chain
// (i=2), which our verifier and dkimpy's both pass.
func TestInboundARCTrustedSealer(t *testing.T) {
	z, forwarded := arcDNS(t)
	h := arcHarness(t, z.Addr, []string{"gw.example"}, false)
	if r := sendInbound(h, "bob.roe@example.org", forwarded(gwResults)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := relayedOne(t, h)
	ars := arFields(got)
	if len(ars) != 1 || !strings.Contains(ars[0], "dkim=fail") ||
		!strings.Contains(ars[0], "dmarc=fail reason=\"no aligned identifier passed\" header.from=example.org policy.arc-sealer=gw.example policy.override=trusted_forwarder") ||
		!strings.Contains(ars[0], "arc=pass (as.1.d=gw.example as.1.s=arc, trusted i=1) header.oldest-pass=0") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
	if !strings.HasPrefix(got, "ARC-Seal: i=2; a=rsa-sha256;") || !strings.Contains(got, "cv=pass;") ||
		!strings.Contains(got, "ARC-Authentication-Results: i=2; mx.test;") {
		t.Fatalf("no seal continuing the chain on top:\n%s", got)
	}
	assertARCPasses(t, z, got, 2)
	logs := h.logs.String()
	for _, want := range []string{`"arc":"pass"`, `"dmarc_override":"arc"`, `"arc_sealed":2`, `"result":"relayed"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// TestInboundARCUntrustedSealer: the same message, the gateway not
// trusted: its seal is verified and reported, never trusted; DMARC's
// p=reject refuses the message, or tags it with dmarc_reject_action: tag.
func TestInboundARCUntrustedSealer(t *testing.T) {
	z, forwarded := arcDNS(t)
	h := arcHarness(t, z.Addr, []string{"other.example"}, false)
	if r := sendInbound(h, "bob.roe@example.org", forwarded(gwResults)); !strings.HasPrefix(r, "550 5.7.1") {
		t.Fatalf("DATA: %s, want 550 5.7.1", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages", n)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"result":"refused_dmarc"`) || !strings.Contains(logs, `"arc":"pass"`) || strings.Contains(logs, "dmarc_override") {
		t.Fatalf("log:\n%s", logs)
	}

	tagged := arcHarness(t, z.Addr, nil, true)
	if r := sendInbound(tagged, "bob.roe@example.org", forwarded(gwResults)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA (tag): %s", r)
	}
	got := relayedOne(t, tagged)
	ars := arFields(got)
	if len(ars) != 1 || !strings.Contains(ars[0], "dmarc=fail reason=\"no aligned identifier passed\" header.from=example.org; arc=pass (as.1.d=gw.example as.1.s=arc) header.oldest-pass=0") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
	assertARCPasses(t, z, got, 2)
}

// TestInboundARCRewrittenChain: a gateway whose results name Bob's
// address: the rewriter tokenizes it, which would break the gateway's
// seal, so the route removes the old sets and starts a chain of its own
// (i=1), with what the old one was in its results. No address survives.
func TestInboundARCRewrittenChain(t *testing.T) {
	z, forwarded := arcDNS(t)
	h := arcHarness(t, z.Addr, []string{"gw.example"}, false)
	results := "gw.example; spf=pass smtp.mailfrom=bob.roe@example.org; dkim=pass header.d=example.org"
	if r := sendInbound(h, "bob.roe@example.org", forwarded(results)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := relayedOne(t, h)
	if strings.Count(got, "ARC-Seal:") != 1 || !strings.Contains(got, "ARC-Seal: i=1;") || !strings.Contains(got, "cv=none;") ||
		strings.Contains(got, "gw.example; spf=pass") {
		t.Fatalf("want one new set, the gateway's gone:\n%s", got)
	}
	if ars := arFields(got); len(ars) != 1 || !strings.Contains(ars[0], "arc=pass (as.1.d=gw.example as.1.s=arc, trusted i=1)") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
	assertARCPasses(t, z, got, 1)
}

// assertARCPasses checks the relayed message's chain with our verifier and
// with dkimpy's (Debian python3-dkim, through mailauth's test script).
func assertARCPasses(t *testing.T, z *dnstest.Server, msg string, instances int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := mailauth.Verify(ctx, mailauth.NewResolver(z.Addr, 2*time.Second),
		mailauth.VerifyInput{ClientIP: net.ParseIP("127.0.0.1"), Helo: "mx.test"}, strings.NewReader(msg))
	if err != nil || v.ARC.Result != mailauth.ResultPass || v.ARC.Instances != instances {
		t.Fatalf("our verifier on the relayed message: %v %+v", err, v.ARC)
	}
	script, err := filepath.Abs(filepath.Join("..", "mailauth", "testdata", "install-tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tools.RunScript(script); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	_, port, _ := net.SplitHostPort(z.Addr)
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join("..", "mailauth", "testdata", "arcpy.py"), "verify", port)
	cmd.Stdin = strings.NewReader(msg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.HasPrefix(out.String(), "cv=pass") {
		t.Fatalf("dkimpy on the relayed message: %v\n%s\n%s", err, &out, msg)
	}
}

// failingKey is a sealing key whose every signature fails, as a Vault
// transit key does while Vault is down.
type failingKey struct{ *rsa.PrivateKey }

func (failingKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("vault: transit sign: connection refused")
}

// TestInboundARCSealFails: a message that cannot be sealed is not relayed
// unsealed: 451 4.3.0 (the client retries), nothing reaches the CRM, no
// token is left behind, and the reply names no internal error.
func TestInboundARCSealFails(t *testing.T) {
	z, forwarded := arcDNS(t)
	a := &storetest.Auditor{}
	h := authHarness(t, z.Addr, func(o *harnessOpts) {
		o.createAudit = a
		o.auth.TrustedARCSealers = []string{"gw.example"}
		o.auth.ARCSeal = &mailauth.ARCSealer{Domain: "company.example", Selector: "arc1", Key: failingKey{arcTestKey(t)}}
	})
	r := sendInbound(h, "bob.roe@example.org", forwarded(gwResults))
	if !strings.HasPrefix(r, "451 4.3.0") || strings.Contains(r, "vault") {
		t.Fatalf("DATA: %s, want 451 4.3.0 without details", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages", n)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
}
