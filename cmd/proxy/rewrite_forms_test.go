package main

import (
	"os"
	"path/filepath"
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

// TestRewriteCommandPDF: a PDF attachment naming the customer in a
// compressed page (ReportLab) passed unread before issue 17. Under the
// default policy (pdf: strip) `proxy rewrite` writes a notice in its place
// and keeps the original in the quarantine; under pdf: refuse it refuses
// the message and keeps nothing. A PDF naming nobody passes byte for byte.
func TestRewriteCommandPDF(t *testing.T) {
	c := newCLI(t)
	head := "From: support@company.example\r\nTo: agent@crm.example\r\nContent-Type: application/pdf; name=invoice.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"
	named := head + textforms.Base64Lines(textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice for jane.doe@example.com')\nc.save()"))
	code, out, errs := c.runStdin(named, "rewrite", "--route", "inbound")
	if code != 0 || !strings.Contains(out, "This attachment was removed") || strings.Contains(out, "JVBERi0") || strings.Contains(out, "jane") {
		t.Fatalf("PDF naming the customer: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if kept, _ := filepath.Glob(filepath.Join(c.dataDir, "quarantine", "*")); len(kept) != 1 {
		t.Fatalf("quarantine holds %d files, want the stripped PDF", len(kept))
	}
	cfg := filepath.Join(t.TempDir(), "refuse.yaml")
	os.WriteFile(cfg, []byte("relay_domain: relay.example\ninternal_domains: [company.example, crm.example]\n"+
		"mailboxes: [{public: a@company.example, crm: b@crm.example}]\nrewrite: {attachments: {pdf: refuse}}\n"), 0o600)
	r := newCLI(t)
	code, out, errs = r.runStdin(named, "--config", cfg, "rewrite", "--route", "inbound")
	if code != 1 || out != "" || !strings.Contains(errs, "proxy rewrite: message refused: ") || strings.Contains(errs, "jane") {
		t.Fatalf("pdf: refuse: exit %d, stdout %d bytes, stderr %q", code, len(out), errs)
	}
	if kept, _ := filepath.Glob(filepath.Join(r.dataDir, "quarantine", "*")); len(kept) != 0 {
		t.Fatalf("a refused message left %d quarantined files", len(kept))
	}
	clean := head + textforms.Base64Lines(textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice 1234')\nc.save()"))
	if code, out, errs := c.runStdin(clean, "rewrite", "--route", "inbound"); code != 0 || out != clean {
		t.Fatalf("PDF naming nobody: exit %d\n%s", code, errs)
	}
}
