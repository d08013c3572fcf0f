package rewrite

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// TestTextFormsCorpus runs the corpus of issue 17 (items 4 and 6: text
// however it is labelled, RTF from LibreOffice, flowed text, bounces)
// through the rewriter. Each form's own reader (iconv, LibreOffice,
// go-message) must see every address in the input, none in the inbound
// output, and each one back after outbound.
func TestTextFormsCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("LibreOffice")
	}
	for _, f := range textforms.Forms(t) {
		t.Run(f.Name, func(t *testing.T) {
			in := f.Read(t, f.Msg)
			for _, a := range textforms.Addresses {
				if !strings.Contains(in, a) {
					t.Fatalf("the reader does not see %s in the input:\n%s", a, in)
				}
			}
			rw, _ := newTestRewriter(t, RewriteOptions{})
			out, rep, err := runInbound(t, rw, f.Msg)
			if err != nil {
				t.Fatalf("Inbound: %v", err)
			}
			seen, raw := f.Read(t, out), string(textforms.Part(t, out))
			for _, s := range append(append([]string{}, textforms.Addresses...), f.Names...) {
				if strings.Contains(seen, s) || strings.Contains(raw, s) {
					t.Errorf("%q reaches the CRM:\n%s", s, seen)
				}
			}
			if len(rep.Tokens) != 2 || !strings.Contains(seen, "@relay.company.example") {
				t.Errorf("%d tokens; the reader sees:\n%s", len(rep.Tokens), seen)
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatalf("Outbound: %v", err)
			}
			restored := f.Read(t, back)
			for _, a := range textforms.Addresses {
				if !strings.Contains(restored, a) {
					t.Errorf("outbound did not restore %s:\n%s", a, restored)
				}
			}
		})
	}
}
