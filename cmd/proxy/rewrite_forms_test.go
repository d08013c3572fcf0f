package main

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// TestRewriteCommandTextForms runs the issue 17 corpus (text however it is
// labelled, RTF from LibreOffice, flowed text, a bounce's returned header)
// through `proxy rewrite`, both routes, with the embedded quickstart. Each
// was refused or leaked before; now each form's own reader (iconv,
// LibreOffice, go-message) sees no customer address or name in what the
// CRM would get, and every address again in what the customer would get.
func TestRewriteCommandTextForms(t *testing.T) {
	if testing.Short() {
		t.Skip("LibreOffice")
	}
	c := newCLI(t)
	for _, f := range textforms.Forms(t) {
		t.Run(f.Name, func(t *testing.T) {
			code, out, errs := c.runStdin(string(f.Msg), "rewrite", "--route", "inbound")
			if code != 0 {
				t.Fatalf("inbound: exit %d\n%s", code, errs)
			}
			seen, raw := f.Read(t, []byte(out)), string(textforms.Part(t, []byte(out)))
			for _, s := range append(append([]string{}, textforms.Addresses...), f.Names...) {
				if strings.Contains(seen, s) || strings.Contains(raw, s) {
					t.Errorf("%q reaches the CRM:\n%s", s, seen)
				}
			}
			if !strings.Contains(seen, "@relay.company.example") {
				t.Errorf("no token in what the CRM reads:\n%s", seen)
			}
			code, back, errs := c.runStdin(out, "rewrite", "--route", "outbound")
			if code != 0 {
				t.Fatalf("outbound: exit %d\n%s", code, errs)
			}
			restored := f.Read(t, []byte(back))
			for _, a := range textforms.Addresses {
				if !strings.Contains(restored, a) {
					t.Errorf("outbound did not restore %s:\n%s", a, restored)
				}
			}
		})
	}
}
