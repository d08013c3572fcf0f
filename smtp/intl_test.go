package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestOutboundSMTPUTF8Reply: the CRM's reply to the token of a customer
// whose address is not ASCII (the CRM sees only ASCII tokens and never
// says SMTPUTF8) reaches a smarthost that offers SMTPUTF8 with it (issue
// 16: the MAIL went without, and the smarthost answered 501 5.1.3 for the
// restored address); one that does not offer it gets no message and the
// CRM a permanent 553 5.6.7, not a 4xx retried for days.
func TestOutboundSMTPUTF8Reply(t *testing.T) {
	const customer = "jörg@bücher.example"
	for _, tc := range []struct {
		name     string
		smtputf8 bool
		want     string
	}{
		{"smarthost with SMTPUTF8", true, "250"},
		{"smarthost without", false, "553 5.6.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *harnessOpts) { o.ds = &downstreamtest.Sink{SMTPUTF8: tc.smtputf8} })
			tok := h.token(customer)
			c := outboundSession(h)
			c.must("250", "MAIL FROM:<support@crm.example>") // no SMTPUTF8: the CRM's way
			c.must(tc.want, "RCPT TO:<%s>", tok)
			if tc.want != "250" {
				if n := len(h.ds.Stats().Messages); n != 0 {
					t.Fatalf("%d messages relayed", n)
				}
				return
			}
			r := c.data(crlf("From: Support <support@crm.example>\nTo: Jörg <" + tok + ">\nSubject: Re: order\n\nHallo " + tok + "\n"))
			if !strings.HasPrefix(r, "250") {
				t.Fatalf("DATA: %s", r)
			}
			st := h.ds.Stats()
			if len(st.Messages) != 1 || len(st.UTF8Mail) != 1 || !st.UTF8Mail[0] {
				t.Fatalf("messages %d, SMTPUTF8 on MAIL %v: want one with SMTPUTF8", len(st.Messages), st.UTF8Mail)
			}
			if !strings.Contains(st.Messages[0], customer) {
				t.Fatalf("the customer's address is not restored:\n%s", st.Messages[0])
			}
		})
	}
}

// TestInboundUTF8HeaderNoSMTPUTF8: a customer message whose header needs
// SMTPUTF8 (RFC 6532), to a CRM intake that does not offer it, gets a
// permanent 553 5.6.7 (issue 16: 451 4.4.2, retried for days) and leaves
// no token behind; the same message with an ASCII header is relayed even
// though the client declared SMTPUTF8.
func TestInboundUTF8HeaderNoSMTPUTF8(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) { o.createAudit = a }) // the sink offers 8BITMIME, not SMTPUTF8
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	// A short message is held until rewritten, a long one streams: both
	// are refused before their tokens are committed.
	for _, body := range []string{"hallo\n", strings.Repeat("hallo hallo hallo hallo hallo hallo hallo\n", 2000)} {
		c.must("250", "MAIL FROM:<jane.doe@example.com> SMTPUTF8 BODY=8BITMIME")
		c.must("250", "RCPT TO:<support@company.example>")
		r := c.data(crlf("From: Jane Doe <jane.doe@example.com>\nTo: support@company.example\nSubject: Grüße aus Köln\n\n" + body))
		if !strings.HasPrefix(r, "553 5.6.7") {
			t.Fatalf("DATA of %d octets: %s", len(body), r)
		}
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("%d messages relayed", n)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
	c.must("250", "MAIL FROM:<jane.doe@example.com> SMTPUTF8")
	c.must("250", "RCPT TO:<support@company.example>")
	r := c.data(crlf("From: Jane Doe <jane.doe@example.com>\nTo: support@company.example\nSubject: plain\n\nhallo\n"))
	if !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA, ASCII header: %s", r)
	}
}
