package smtp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

// The customer's server in the authentication tests: 127.0.0.1, the
// harness client's address.
const authHelo = "mail.example.com"

// authMsg is a customer message with two forged Authentication-Results
// fields claiming our authserv-id (mx.test, the inbound route's name) and
// one of another service.
const authMsg = `Authentication-Results: mx.test; spf=pass smtp.mailfrom=jane.doe@example.com; dmarc=pass header.from=example.com
Authentication-Results: (looks like ours) MX.TEST;
 dkim=pass header.i=@example.com
Authentication-Results: other.example; dkim=pass header.d=example.org
From: Jane Doe <jane.doe@example.com>
To: Support <support@company.example>
Subject: where is my order
Date: Mon, 02 Jun 2025 10:00:00 +0000
Message-ID: <abc.123@mail.example.com>

Hi, write to carol@customer.example or me.
`

// authDNS serves the customer domains' records: example.com authorizes
// 127.0.0.1 and publishes p=reject; example.org authorizes another
// address only and publishes p=reject.
func authDNS(t testing.TB) *dnstest.Server {
	z := dnstest.Start(t)
	z.TXT("example.com", "v=spf1 ip4:127.0.0.1 -all")
	z.TXT("_dmarc.example.com", "v=DMARC1; p=reject")
	z.TXT(authHelo, "v=spf1 ip4:127.0.0.1 -all")
	z.TXT("example.org", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.example.org", "v=DMARC1; p=reject")
	return z
}

// authHarness runs the routes with the inbound check on z.
func authHarness(t *testing.T, dnsAddr string, mutate func(*harnessOpts)) *harness {
	return newHarness(t, func(o *harnessOpts) {
		o.auth = &AuthCheck{Resolver: mailauth.NewResolver(dnsAddr, 2*time.Second)}
		if mutate != nil {
			mutate(o)
		}
	})
}

// dkimSign signs msg (CRLF) as the customer's server would.
func dkimSign(t testing.TB, key crypto.Signer, domain, selector, msg string) string {
	t.Helper()
	var out bytes.Buffer
	cfg := mailauth.SignerConfig{Domain: domain, Selector: selector, Key: key}
	if err := mailauth.Sign(context.Background(), cfg, strings.NewReader(msg), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// publishDKIM serves the public key of key at selector._domainkey.domain.
func publishDKIM(t testing.TB, z *dnstest.Server, domain, selector string, pub crypto.PublicKey) {
	t.Helper()
	recs := mailauth.Records(mailauth.RecordsInput{DKIMKeys: []mailauth.DKIMKey{{Domain: domain, Selector: selector, Public: pub}}})
	if len(recs) != 1 || recs[0].Value == "" {
		t.Fatalf("DKIM record: %+v", recs)
	}
	z.TXT(recs[0].Name, recs[0].Value)
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sendInbound delivers msg from the customer's server and returns the
// final reply.
func sendInbound(h *harness, from, msg string) string {
	c := h.dial(h.in)
	c.must("250", "EHLO "+authHelo)
	c.must("250", "MAIL FROM:<%s>", from)
	c.must("250", "RCPT TO:<support@company.example>")
	return c.data(msg)
}

// relayedOne returns the one message the CRM received, checked for
// customer addresses.
func relayedOne(t *testing.T, h *harness) string {
	t.Helper()
	msgs := h.ds.Stats().Messages
	if len(msgs) != 1 {
		t.Fatalf("the CRM received %d messages, want 1", len(msgs))
	}
	for _, c := range testCustomers {
		if strings.Contains(strings.ToLower(msgs[0]), c) {
			t.Errorf("the CRM received %s:\n%s", c, msgs[0])
		}
	}
	return msgs[0]
}

// arFields returns the Authentication-Results fields of a message's
// header section, unfolded.
func arFields(msg string) []string {
	hdr, _, _ := strings.Cut(msg, "\r\n\r\n")
	hdr = strings.ReplaceAll(hdr, "\r\n\t", " ")
	hdr = strings.ReplaceAll(hdr, "\r\n ", " ")
	var out []string
	for _, line := range strings.Split(hdr, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "authentication-results:") {
			out = append(out, line)
		}
	}
	return out
}

// TestInboundAuthResults: SPF, DKIM and DMARC verdicts reach the CRM in
// our Authentication-Results field, on top, with the envelope sender as
// its token and the domains kept; the forged fields claiming our
// authserv-id are removed (RFC 8601 §5), another service's is kept.
func TestInboundAuthResults(t *testing.T) {
	z := authDNS(t)
	key := newEd25519(t)
	publishDKIM(t, z, "example.com", "sel", key.Public())
	h := authHarness(t, z.Addr, nil)
	msg := dkimSign(t, key, "example.com", "sel", crlf(authMsg))
	if r := sendInbound(h, "Jane.Doe@example.com", msg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := relayedOne(t, h)
	tok := h.token("jane.doe@example.com")
	ars := arFields(got)
	want := "Authentication-Results: mx.test; spf=pass smtp.mailfrom=" + tok +
		"; dkim=pass header.a=ed25519-sha256 header.d=example.com header.i=@example.com header.s=sel" +
		"; dmarc=pass header.from=example.com"
	if len(ars) != 2 || ars[0] != want || ars[1] != "Authentication-Results: other.example; dkim=pass header.d=example.org" {
		t.Fatalf("Authentication-Results fields:\n%s\nwant:\n%s\nand other.example's", strings.Join(ars, "\n"), want)
	}
	// On top, right under our Received field, one method per line.
	if !strings.HasPrefix(got, "Received: from "+authHelo) || !strings.Contains(got, "\r\nAuthentication-Results: mx.test;\r\n\tspf=pass") ||
		strings.Index(got, "Authentication-Results: mx.test") > strings.Index(got, "DKIM-Signature:") {
		t.Fatalf("field not on top:\n%s", got)
	}
	logs := h.logs.String()
	for _, want := range []string{`"spf":"pass"`, `"dkim":"pass"`, `"dmarc":"pass"`, `"auth_results_removed":2`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

// TestInboundStripsForgedWithoutCheck: with the check off, fields claiming
// our authserv-id are still removed (RFC 8601 §5), and none is added.
func TestInboundStripsForgedWithoutCheck(t *testing.T) {
	h := newHarness(t, nil)
	if r := sendInbound(h, "jane.doe@example.com", crlf(authMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	if ars := arFields(relayedOne(t, h)); len(ars) != 1 || !strings.HasPrefix(ars[0], "Authentication-Results: other.example;") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
}

// TestInboundLeadingFoldDropped: folded lines before the first field
// belong to no field; left in place they would continue our field on top
// of them, a forger's verdict inside ours.
func TestInboundLeadingFoldDropped(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, nil)
	msg := " ; dkim=pass header.d=bank.example\r\n\t(more)\r\n" + crlf(customerMsg)
	if r := sendInbound(h, "jane.doe@example.com", msg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := relayedOne(t, h)
	if ars := arFields(got); len(ars) != 1 || strings.Contains(got, "bank.example") || strings.Contains(got, "(more)") ||
		!strings.HasSuffix(ars[0], "dmarc=pass header.from=example.com") {
		t.Fatalf("Authentication-Results: %q\n%s", ars, got)
	}
}

// TestInboundAuthNullSender: a bounce is checked by its HELO identity
// (RFC 7208 §2.4), which is a domain and is shown.
func TestInboundAuthNullSender(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, nil)
	if r := sendInbound(h, "", crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	if ars := arFields(relayedOne(t, h)); len(ars) != 1 || !strings.Contains(ars[0], "spf=pass smtp.helo="+authHelo) {
		t.Fatalf("Authentication-Results: %q", ars)
	}
}

// dmarcFailMsg is From a domain that publishes p=reject, sent from an
// address its SPF record does not list, without a signature.
var dmarcFailMsg = crlf(`From: Bob Roe <bob.roe@example.org>
To: support@company.example
Subject: hello

spoofed?
`)

// TestInboundDMARCReject: DMARC fails under p=reject → 550 5.7.1
// (RFC 7489 §6.6.2), nothing reaches the CRM, the session goes on.
func TestInboundDMARCReject(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO "+authHelo)
	c.must("250", "MAIL FROM:<bob.roe@example.org>")
	c.must("250", "RCPT TO:<support@company.example>")
	r := c.data(dmarcFailMsg)
	if !strings.HasPrefix(r, "550 5.7.1") || !strings.Contains(r, "(session ") || strings.Contains(r, "example.org") {
		t.Fatalf("DATA: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages", n)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"result":"refused_dmarc"`) || !strings.Contains(logs, `"dmarc":"fail"`) {
		t.Fatalf("log:\n%s", logs)
	}
	// The session stays usable: an authenticated message goes through.
	c.must("250", "RSET")
	c.must("250", "MAIL FROM:<jane.doe@example.com>")
	c.must("250", "RCPT TO:<support@company.example>")
	if r := c.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("next transaction: %s", r)
	}
}

// TestInboundDMARCTag: with dmarc_reject_action tag the message is relayed
// and the CRM sees the failure.
func TestInboundDMARCTag(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, func(o *harnessOpts) { o.auth.TagDMARCReject = true })
	if r := sendInbound(h, "bob.roe@example.org", dmarcFailMsg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	ars := arFields(relayedOne(t, h))
	tok := h.token("bob.roe@example.org")
	if len(ars) != 1 || !strings.Contains(ars[0], "spf=fail smtp.mailfrom="+tok+";") ||
		!strings.Contains(ars[0], "dkim=none;") || !strings.Contains(ars[0], "dmarc=fail") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
}

// TestInboundDNSTimeout: a resolver that never answers gives temperror
// verdicts, and the message is relayed (DNS trouble never fails a message).
func TestInboundDNSTimeout(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) {
		o.auth = &AuthCheck{Resolver: mailauth.NewResolver(dnstest.Blackhole(t), 200*time.Millisecond)}
	})
	start := time.Now()
	if r := sendInbound(h, "jane.doe@example.com", crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v", d)
	}
	ars := arFields(relayedOne(t, h))
	if len(ars) != 1 || !strings.Contains(ars[0], "spf=temperror smtp.mailfrom="+h.token("jane.doe@example.com")) ||
		!strings.Contains(ars[0], "dmarc=temperror") {
		t.Fatalf("Authentication-Results: %q", ars)
	}
}

// TestInboundAuthBareLF: the strict reader still reads first: bare line
// endings get 500 5.5.2 after the whole data, and the session stays in step.
func TestInboundAuthBareLF(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO "+authHelo)
	c.must("250", "MAIL FROM:<jane.doe@example.com>")
	c.must("250", "RCPT TO:<support@company.example>")
	if r := c.data("Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@example.net>\r\n"); !strings.HasPrefix(r, "500 5.5.2") {
		t.Fatalf("DATA: %s", r)
	}
	c.must("250", "NOOP")
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d", n)
	}
}

// TestInboundAuthLargeMessage: a message larger than the memory spool
// goes through a file in the spool directory, which keeps no name.
func TestInboundAuthLargeMessage(t *testing.T) {
	z := authDNS(t)
	dir := t.TempDir()
	h := authHarness(t, z.Addr, func(o *harnessOpts) { o.limits.MaxMessageBytes = 4 << 20; o.spoolDir = dir })
	body := strings.Repeat("0123456789 the quick brown fox jumps over the lazy dog\r\n", 30000) // ~1.6 MiB
	if r := sendInbound(h, "jane.doe@example.com", crlf(customerMsg)+body); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := relayedOne(t, h)
	if !strings.Contains(got, body) || len(arFields(got)) != 1 {
		t.Fatalf("relayed %d bytes, body or field missing", len(got))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spool directory keeps %d files", len(entries))
	}
}

// TestOutboundDKIMSigned: the relayed reply carries a DKIM signature that
// verifies against the published key, over the detokenized message.
func TestOutboundDKIMSigned(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{"ed25519-sha256": newEd25519(t), "rsa-sha256": rsaKey} {
		t.Run(name, func(t *testing.T) {
			z := dnstest.Start(t)
			publishDKIM(t, z, "company.example", "tp1", key.Public())
			h := newHarness(t, func(o *harnessOpts) {
				o.dkim = &mailauth.SignerConfig{Domain: "company.example", Selector: "tp1", Key: key}
			})
			got := sendReply(t, h, "250", "")
			if !strings.HasPrefix(got, "DKIM-Signature:") || !strings.Contains(got, "To: jane.doe@example.com\r\n") ||
				!strings.Contains(got, "From: Support <support@company.example>\r\n") {
				t.Fatalf("relayed:\n%s", got)
			}
			assertDKIMPass(t, z, got, name)
		})
	}
}

// TestOutboundDKIMLargeMessage: a reply larger than the memory spool is
// signed from the (encrypted) spool file and still verifies.
func TestOutboundDKIMLargeMessage(t *testing.T) {
	z := dnstest.Start(t)
	key := newEd25519(t)
	publishDKIM(t, z, "company.example", "tp1", key.Public())
	h := newHarness(t, func(o *harnessOpts) {
		o.limits.MaxMessageBytes = 4 << 20
		o.dkim = &mailauth.SignerConfig{Domain: "company.example", Selector: "tp1", Key: key}
	})
	body := strings.Repeat("we shipped it, tracking number follows  \n", 40000) // ~1.6 MiB
	got := sendReply(t, h, "250", body)
	if len(got) < 1<<20 {
		t.Fatalf("relayed %d bytes", len(got))
	}
	assertDKIMPass(t, z, got, "ed25519-sha256")
}

// assertDKIMPass verifies msg's one signature against z.
func assertDKIMPass(t *testing.T, z *dnstest.Server, msg, alg string) {
	t.Helper()
	v, err := mailauth.Verify(context.Background(), mailauth.NewResolver(z.Addr, 2*time.Second),
		mailauth.VerifyInput{ClientIP: net.IPv4(127, 0, 0, 1), Helo: "relay.test", MailFrom: "support@company.example"},
		strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.DKIM) != 1 || v.DKIM[0].Result != mailauth.ResultPass || v.DKIM[0].Domain != "company.example" || v.DKIM[0].Algorithm != alg {
		t.Fatalf("DKIM verdicts: %+v", v.DKIM)
	}
}

// failingSigner is a key whose signing service is down (Vault).
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("vault: connection refused")
}

// TestOutboundDKIMFailureIs451: a signature that cannot be made → 451 4.3.0
// and nothing relayed; the client retries.
func TestOutboundDKIMFailureIs451(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) {
		o.dkim = &mailauth.SignerConfig{Domain: "company.example", Selector: "tp1", Key: failingSigner{newEd25519(t)}}
	})
	sendReply(t, h, "451 4.3.0", "")
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d", n)
	}
}

// sendReply sends the CRM's reply to a customer token, with more body
// lines, and checks the final reply's start; it returns what the smarthost
// received, if anything.
func sendReply(t *testing.T, h *harness, want, more string) string {
	t.Helper()
	tok := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", tok)
	r := c.data(crlf("From: Support <support@crm.example>\nTo: " + tok + "\nSubject: Re: order\nDate: Mon, 02 Jun 2025 11:00:00 +0000\nMessage-ID: <r1@crm.example>\n\n> " + tok + " wrote\nit shipped  \n" + more))
	if !strings.HasPrefix(r, want) {
		t.Fatalf("DATA: %s, want %s", r, want)
	}
	c.must("250", "RSET")
	if msgs := h.ds.Stats().Messages; len(msgs) > 0 {
		return msgs[0]
	}
	return ""
}
