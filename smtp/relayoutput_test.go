package smtp

import (
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
)

// bodyOf is a text body of about n bytes whose lines name no address.
func bodyOf(n int) string {
	line := "the parcel arrived damaged, please send a new one soon\n"
	return strings.Repeat(line, n/len(line)+1)
}

// TestInboundRelaysHeldAndStreamed: a message is relayed whole and
// tokenized whether it fits in relayHoldBytes (sent after the rewrite) or
// not (streamed as it is rewritten), including sizes around the limit.
func TestInboundRelaysHeldAndStreamed(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.limits.MaxMessageBytes = 4 << 20 })
	for _, n := range []int{0, relayHoldBytes - 2000, relayHoldBytes - 300, relayHoldBytes, relayHoldBytes + 300, 3 * relayHoldBytes, 1 << 20} {
		body := bodyOf(n)
		// An address after the body: it is tokenized in the streamed part.
		msg := crlf(customerMsg + "\n" + body + "Or write to carol@customer.example.\n")
		if r := sendInbound(h, "jane.doe@example.com", msg); !strings.HasPrefix(r, "250") {
			t.Fatalf("%d bytes: DATA: %s", n, r)
		}
		msgs := h.ds.Stats().Messages
		got := msgs[len(msgs)-1]
		for _, c := range testCustomers {
			if strings.Contains(strings.ToLower(got), c) {
				t.Fatalf("%d bytes: the CRM received %s", n, c)
			}
		}
		if !strings.Contains(got, crlf(body)) || !strings.Contains(got, crlf(body)+"Or write to "+h.token("carol@customer.example")+".\r\n") {
			t.Fatalf("%d bytes: relayed %d bytes, body or its end missing", n, len(got))
		}
	}
}

// TestInboundStreamedBareLineEndingAborts: a bare LF far into a message
// that is already streaming downstream is refused after the whole data,
// and the downstream never gets the final dot.
func TestInboundStreamedBareLineEndingAborts(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.limits.MaxMessageBytes = 4 << 20 })
	for _, n := range []int{100, 3 * relayHoldBytes} {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		c.must("250", "MAIL FROM:<jane.doe@example.com>")
		c.must("250", "RCPT TO:<support@company.example>")
		if r := c.data(crlf(customerMsg+"\n"+bodyOf(n)) + "bare\nline\r\n"); !strings.HasPrefix(r, "500 5.5.2") {
			t.Fatalf("%d bytes: DATA: %s", n, r)
		}
		c.must("250", "NOOP")
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages", n)
	}
}

// TestInboundStreamedDownstreamRefusal: a downstream that refuses a
// message already streaming is reported to the client.
func TestInboundStreamedDownstreamRefusal(t *testing.T) {
	ds := &downstreamtest.Sink{DataErr: &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "no"}}
	h := newHarness(t, func(o *harnessOpts) { o.limits.MaxMessageBytes = 4 << 20; o.ds = ds })
	for _, n := range []int{100, 3 * relayHoldBytes} {
		if r := sendInbound(h, "jane.doe@example.com", crlf(customerMsg+"\n"+bodyOf(n))); !strings.HasPrefix(r, "5") {
			t.Fatalf("%d bytes: DATA: %s", n, r)
		}
	}
}
