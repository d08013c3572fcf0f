package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestInboundTextForms sends the issue 17 corpus (text however it is
// labelled, RTF from LibreOffice, flowed text, a bounce's returned
// header) through the inbound route. Each used to be refused (554 5.6.0,
// a bounce for the customer) or to reach the CRM with its addresses; now
// each is relayed, and its own reader (iconv, LibreOffice, go-message)
// sees no customer address or name in what the CRM received.
func TestInboundTextForms(t *testing.T) {
	if testing.Short() {
		t.Skip("LibreOffice")
	}
	h := newHarness(t, nil)
	for i, f := range textforms.Forms(t) {
		if r := h.send("jane.doe@example.com", string(f.Msg)); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: DATA: %s", f.Name, r)
		}
		got := h.ds.Stats().Messages[i]
		seen, raw := f.Read(t, []byte(got)), string(textforms.Part(t, []byte(got)))
		for _, s := range append(append([]string{}, textforms.Addresses...), f.Names...) {
			if strings.Contains(seen, s) || strings.Contains(raw, s) {
				t.Errorf("%s: %q reaches the CRM:\n%s", f.Name, s, seen)
			}
		}
	}
}

// TestInboundPDFNamingCustomerRefused: a PDF attachment naming the
// customer in a compressed page passed unread before; the route now
// refuses it with the unscannable reply, relays nothing and keeps no
// token.
func TestInboundPDFNamingCustomerRefused(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) { o.createAudit = a })
	doc := textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice for jane.doe@example.com')\nc.save()")
	msg := "From: jane.doe@example.com\r\nTo: support@company.example\r\nContent-Type: application/pdf; name=invoice.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + textforms.Base64Lines(doc)
	if r := h.send("jane.doe@example.com", msg); !strings.HasPrefix(r, "554 5.6.0") {
		t.Fatalf("DATA: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("%d messages relayed", n)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
}
