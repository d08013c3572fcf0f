package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
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
