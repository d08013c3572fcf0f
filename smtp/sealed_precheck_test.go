package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestOutboundDKIMPrecheck: a reply that is DKIM-signed (the sealed path:
// rewritten into a spool, signed, then relayed) is prechecked against the
// smarthost before it is committed. One whose restored header needs
// SMTPUTF8 (a Cc: of a customer whose address is not ASCII), to a
// smarthost without SMTPUTF8, gets 553 5.6.7; one with an 8-bit body, to a
// smarthost without 8BITMIME and eight_bit: refuse, gets 554 5.6.3. Either
// way nothing is relayed and the message leaves no audit record (its
// detokenization was not committed) and no token.
func TestOutboundDKIMPrecheck(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		sink       *downstreamtest.Sink
		header     string // the Cc: field's value, with %s for the token
		body       string
	}{
		{"restored header needs SMTPUTF8", "553 5.6.7", &downstreamtest.Sink{}, "Jörg <%s>", "it shipped\n"},
		{"8-bit body to a 7-bit smarthost", "554 5.6.3", &downstreamtest.Sink{No8BitMIME: true}, "team@company.example", "Grüße, it shipped\n"},
		{"passes", "250", &downstreamtest.Sink{SMTPUTF8: true}, "Jörg <%s>", "Grüße, it shipped\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &failingAuditor{}
			h := newHarness(t, func(o *harnessOpts) {
				o.ds = tc.sink
				o.audit = a
				o.dsConfig = func(c *downstream.Config) { c.EightBit = downstream.EightBitRefuse }
				o.dkim = &mailauth.SignerConfig{Domain: "company.example", Selector: "tp1", Key: newEd25519(t)}
			})
			jane, jorg := h.token("jane.doe@example.com"), h.token("jörg@bücher.example")
			tokens, _, _ := h.stored(&storetest.Auditor{})
			c := outboundSession(h)
			c.must("250", "MAIL FROM:<support@crm.example>")
			c.must("250", "RCPT TO:<%s>", jane)
			msg := "From: Support <support@crm.example>\nTo: " + jane + "\nCc: " + strings.Replace(tc.header, "%s", jorg, 1) +
				"\nSubject: Re: order\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + tc.body
			if r := c.data(crlf(msg)); !strings.HasPrefix(r, tc.want) {
				t.Fatalf("DATA: %s, want %s", r, tc.want)
			}
			c.must("250", "RSET")
			msgs := h.ds.Stats().Messages
			after, _, _ := h.stored(&storetest.Auditor{})
			a.mu.Lock()
			recs := len(a.recs)
			a.mu.Unlock()
			if tc.want == "250" {
				if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "DKIM-Signature:") || recs != 1 {
					t.Fatalf("%d relayed, %d audit records: want one signed, one record", len(msgs), recs)
				}
				return
			}
			if len(msgs) != 0 || recs != 0 || after != tokens {
				t.Fatalf("the refused reply: %d relayed, %d audit records, tokens %d → %d", len(msgs), recs, tokens, after)
			}
		})
	}
}
