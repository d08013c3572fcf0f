package smtp

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/rewrite/attach"
	"github.com/tokenproxy/tokenproxy/test/textforms"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// pdfMessage is a customer message with a PDF attachment.
func pdfMessage(doc []byte) string {
	return "From: jane.doe@example.com\r\nTo: support@company.example\r\nSubject: invoice\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nmy invoice\r\n--b\r\n" +
		"Content-Type: application/pdf; name=invoice.pdf\r\nContent-Disposition: attachment; filename=invoice.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + textforms.Base64Lines(doc) + "--b--\r\n"
}

// TestInboundPDFNamingCustomer: a customer sends an invoice carrying their
// own address (ReportLab, compressed page; LibreOffice, subset fonts).
// Under the default policy (pdf: strip) the CRM gets the message with a
// notice in the PDF's place and no address, and the route keeps the
// original for the quarantine; under refuse (and pass, which lets no
// address through) the reply is 554 5.6.0, nothing is relayed, and
// neither a token, an outbox entry, a creation record nor a quarantined
// original is left behind.
func TestInboundPDFNamingCustomer(t *testing.T) {
	reportlab := textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice for jane.doe@example.com')\nc.save()")
	lo := textforms.LibreOfficePDF(t, "Rechnung\nAn jane.doe@example.com\n")
	for _, pol := range []attach.Action{"", attach.Refuse, attach.Pass} {
		for _, doc := range [][]byte{reportlab, lo} {
			var mu sync.Mutex
			var kept []rewrite.Stripped
			a := &storetest.Auditor{}
			h := newHarness(t, func(o *harnessOpts) {
				o.createAudit = a
				o.rewrite.Attachments = attach.Policy{PDF: pol}
				o.quarantine = func(_ context.Context, parts []rewrite.Stripped) error {
					mu.Lock()
					defer mu.Unlock()
					kept = append(kept, parts...)
					return nil
				}
			})
			r := h.send("jane.doe@example.com", pdfMessage(doc))
			got := h.ds.Stats().Messages
			if pol != "" {
				if !strings.HasPrefix(r, "554 5.6.0") || strings.Contains(r, "jane") || len(got) != 0 || len(kept) != 0 {
					t.Fatalf("pdf %q: reply %q, %d relayed, %d quarantined", pol, r, len(got), len(kept))
				}
				if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
					t.Fatalf("pdf %q: the refused message left %d tokens, %d outbox entries, %d creation records", pol, tok, ob, rec)
				}
				continue
			}
			if !strings.HasPrefix(r, "250") || len(got) != 1 {
				t.Fatalf("strip: reply %q, %d relayed", r, len(got))
			}
			if strings.Contains(got[0], "jane.doe") || strings.Contains(got[0], "JVBERi0") || // "%PDF-" in base64
				!strings.Contains(got[0], "This attachment was removed") {
				t.Fatalf("strip: the CRM got:\n%s", got[0])
			}
			if len(kept) != 1 || !bytes.Equal(kept[0].Content, doc) || kept[0].Kind != "pdf" || !strings.Contains(got[0], kept[0].Ref) {
				t.Fatalf("strip: quarantined %d parts", len(kept))
			}
			if !strings.Contains(textforms.PDFText(t, kept[0].Content), "jane.doe@example.com") {
				t.Fatal("strip: the quarantined original does not read as the PDF sent")
			}
		}
	}
}

// TestInboundPDFNamingNobodyRelayed: an invoice naming only the company
// reaches the CRM byte for byte under every value of the PDF policy.
func TestInboundPDFNamingNobodyRelayed(t *testing.T) {
	doc := textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice 1234, questions to support@company.example')\nc.save()")
	part := textforms.Base64Lines(doc)
	for _, pol := range []attach.Action{attach.Strip, attach.Refuse, attach.Pass} {
		h := newHarness(t, func(o *harnessOpts) { o.rewrite.Attachments = attach.Policy{PDF: pol} })
		if r := h.send("jane.doe@example.com", pdfMessage(doc)); !strings.HasPrefix(r, "250") {
			t.Fatalf("pdf %q: reply %q", pol, r)
		}
		if got := h.ds.Stats().Messages; len(got) != 1 || !strings.Contains(got[0], part) {
			t.Fatalf("pdf %q: the PDF did not reach the CRM as sent", pol)
		}
	}
}
