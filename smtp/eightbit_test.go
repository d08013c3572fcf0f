package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// A message's new tokens are committed only once the next hop is known to
// take it (DESIGN.md invariant 4): these are the refusals the hop's
// extensions foresee (issue 16 follow-ups, items 1 and 2).

// sendNew sends msg on the inbound route from a new customer, declaring
// an 8-bit body, and returns the final reply.
func sendNew(h *harness, msg string) string {
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.must("250", "MAIL FROM:<jane.doe@example.com> BODY=8BITMIME")
	c.must("250", "RCPT TO:<support@company.example>")
	r := c.data(crlf(msg))
	c.cmd("QUIT")
	return r
}

// eightBitMsg is a customer message with an 8-bit text body of about n
// octets (a customer address at its end) and, when part is not "", a
// second part with that header and a short body.
func eightBitMsg(n int, part string) string {
	text := strings.Repeat("Grüße aus Köln, die Lieferung ist unvollständig.\n", n/50+1) + "Oder an carol@customer.example.\n"
	if part == "" {
		return "From: Jane Doe <jane.doe@example.com>\nTo: support@company.example\nSubject: order\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text
	}
	return "From: Jane Doe <jane.doe@example.com>\nTo: support@company.example\nSubject: order\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
		text + "--b1\n" + part + "\n\nJVBERi0xLjQK\n--b1--\n"
}

// TestInboundEightBitRefusedBeforeCommit: to a hop without 8BITMIME, with
// eight_bit: refuse, an 8-bit message is refused 554 5.6.3 and leaves no
// token, outbox entry or creation record, whether it was held (small) or
// would have streamed (larger than relayHoldBytes: before, its tokens were
// committed first); so is one that cannot be converted (8-bit octets in a
// part that says base64) with eight_bit: convert. A 7-bit message as large
// is relayed, and a convertible 8-bit one arrives as quoted-printable.
func TestInboundEightBitRefusedBeforeCommit(t *testing.T) {
	badPart := "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\xff\xfe"
	for _, tc := range []struct {
		name, policy, msg, want string
		relayed                 bool
	}{
		{"refuse, held", downstream.EightBitRefuse, eightBitMsg(100, ""), "554 5.6.3", false},
		{"refuse, streamed", downstream.EightBitRefuse, eightBitMsg(3*relayHoldBytes, ""), "554 5.6.3", false},
		{"refuse, 7-bit streamed", downstream.EightBitRefuse, customerMsg + bodyOf(3*relayHoldBytes), "250", true},
		{"convert, unconvertible, streamed", downstream.EightBitConvert, eightBitMsg(3*relayHoldBytes, badPart), "554 5.6.3", false},
		{"convert, streamed", downstream.EightBitConvert, eightBitMsg(3*relayHoldBytes, ""), "250", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &storetest.Auditor{}
			h := newHarness(t, func(o *harnessOpts) {
				o.limits.MaxMessageBytes = 4 << 20
				o.createAudit = a
				o.ds = &downstreamtest.Sink{No8BitMIME: true}
				o.dsConfig = func(c *downstream.Config) { c.EightBit = tc.policy }
			})
			if r := sendNew(h, tc.msg); !strings.HasPrefix(r, tc.want) {
				t.Fatalf("DATA of %d octets: %s, want %s", len(tc.msg), r, tc.want)
			}
			tok, ob, rec := h.stored(a)
			msgs := h.ds.Stats().Messages
			if !tc.relayed {
				if len(msgs) != 0 || tok != 0 || ob != 0 || rec != 0 {
					t.Fatalf("the refused message: %d relayed, %d tokens, %d outbox entries, %d creation records", len(msgs), tok, ob, rec)
				}
				return
			}
			if len(msgs) != 1 || tok == 0 || rec != tok {
				t.Fatalf("%d relayed, %d tokens, %d creation records", len(msgs), tok, rec)
			}
			for i := 0; i < len(msgs[0]); i++ {
				if msgs[0][i] >= 0x80 {
					t.Fatalf("an 8-bit octet at %d reached the 7-bit hop", i)
				}
			}
		})
	}
}

// TestInboundPartHeaderUTF8: raw UTF-8 in a MIME part's header (an
// attachment's file name), to a hop that offers 8BITMIME but not SMTPUTF8,
// is refused 553 5.6.7 before commit, held or streamed (before, it went
// out as it was: 8BITMIME carries 8-bit body lines, not headers, RFC 6532
// §3); to a hop that offers SMTPUTF8 it goes with SMTPUTF8 on MAIL.
func TestInboundPartHeaderUTF8(t *testing.T) {
	part := "Content-Type: application/pdf; name=\"Rechnung-März.pdf\"\nContent-Disposition: attachment; filename=\"Rechnung-März.pdf\"\nContent-Transfer-Encoding: base64"
	for _, tc := range []struct {
		name     string
		smtputf8 bool
		size     int
		want     string
	}{
		{"without SMTPUTF8, held", false, 100, "553 5.6.7"},
		{"without SMTPUTF8, streamed", false, 3 * relayHoldBytes, "553 5.6.7"},
		{"with SMTPUTF8, held", true, 100, "250"},
		{"with SMTPUTF8, streamed", true, 3 * relayHoldBytes, "250"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &storetest.Auditor{}
			h := newHarness(t, func(o *harnessOpts) {
				o.limits.MaxMessageBytes = 4 << 20
				o.createAudit = a
				o.ds = &downstreamtest.Sink{SMTPUTF8: tc.smtputf8}
			})
			if r := sendNew(h, eightBitMsg(tc.size, part)); !strings.HasPrefix(r, tc.want) {
				t.Fatalf("DATA: %s, want %s", r, tc.want)
			}
			tok, ob, rec := h.stored(a)
			st := h.ds.Stats()
			if !tc.smtputf8 {
				if len(st.Messages) != 0 || tok != 0 || ob != 0 || rec != 0 {
					t.Fatalf("the refused message: %d relayed, %d tokens, %d outbox entries, %d creation records", len(st.Messages), tok, ob, rec)
				}
				return
			}
			if len(st.Messages) != 1 || !strings.Contains(st.Messages[0], "Rechnung-März.pdf") {
				t.Fatalf("%d relayed, file name kept: want 1 with it", len(st.Messages))
			}
			// A held message's MAIL goes again with SMTPUTF8; a streamed one
			// cannot (DATA has begun) and goes as the client sent it.
			if tc.size < relayHoldBytes && !st.UTF8Mail[len(st.UTF8Mail)-1] {
				t.Fatalf("MAIL without SMTPUTF8 for a message that needs it: %v", st.UTF8Mail)
			}
		})
	}
}
