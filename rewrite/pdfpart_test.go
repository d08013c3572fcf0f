package rewrite

import (
	"bytes"
	"compress/zlib"
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

const invoiceWithAddress = `c = canvas.Canvas(path, pageCompression=1)
c.setAuthor("Jane Doe")
c.drawString(72, 720, "Invoice 1234 for jane.doe@example.com")
c.save()`

// TestPDFNamingACustomerIsRefused: a PDF whose compressed page names the
// customer (ReportLab). Before issue 17 it reached the CRM: the guard saw
// the compressed bytes only. It cannot be rewritten, so it is refused
// (ErrUnscannable: 554 5.6.0), under any type it is sent as, and the
// refusal leaves no token.
func TestPDFNamingACustomerIsRefused(t *testing.T) {
	doc := textforms.ReportLabPDF(t, invoiceWithAddress)
	if !strings.Contains(textforms.PDFText(t, doc), "jane.doe@example.com") {
		t.Fatal("pdftotext does not see the address: the test proves nothing")
	}
	// LibreOffice shows text in subset fonts, read through ToUnicode CMaps.
	lo := textforms.LibreOfficePDF(t, "Rechnung\nAn jane.doe@example.com\n")
	for _, ct := range []struct {
		ctype, disp string
		doc         []byte
	}{
		{"application/pdf", "", doc},
		{"application/octet-stream", "attachment; filename=invoice.pdf", doc},
		{"application/octet-stream", "", doc},
		{"application/pdf", "", lo},
	} {
		msg := genericPart(ct.ctype, ct.disp, "base64", ct.doc)
		rw, m := newTestRewriter(t, RewriteOptions{})
		st := m.Begin()
		_, _, err := runStaged(rw, st, msg)
		if !errors.Is(err, ErrUnscannable) || strings.Contains(err.Error(), "jane") {
			t.Fatalf("%s %s: err = %v, want ErrUnscannable", ct.ctype, ct.disp, err)
		}
		if n := liveTokens(t, m); n != 0 {
			t.Fatalf("the refused message left %d tokens", n)
		}
	}
}

// TestPDFWithoutAddressPasses: a PDF naming nobody, or only the company,
// passes byte for byte; so does one quoting tokens outbound, and one that
// cannot be read (encrypted), as before.
func TestPDFWithoutAddressPasses(t *testing.T) {
	clean := textforms.ReportLabPDF(t, `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 720, "Invoice 1234, questions to support@company.example")
c.save()`)
	tokens := textforms.ReportLabPDF(t, `c = canvas.Canvas(path, pageCompression=1)
c.drawString(72, 720, "Ticket of t1-aaaaaaaaaaaaaaaa@relay.company.example")
c.save()`)
	encrypted := append(textforms.ReportLabPDF(t, invoiceWithAddress), "trailer << /Encrypt 9 0 R >>\n"...)
	for name, doc := range map[string][]byte{"clean": clean, "encrypted": encrypted} {
		msg := genericPart("application/pdf", "", "base64", doc)
		rw, _ := newTestRewriter(t, RewriteOptions{})
		if out, _, err := runInbound(t, rw, msg); err != nil || !bytes.Equal(out, msg) {
			t.Errorf("%s: err %v, or the message changed", name, err)
		}
	}
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msg := genericPart("application/pdf", "", "base64", tokens)
	if out, err := runOutbound(t, rw, msg); err != nil || !bytes.Equal(out, msg) {
		t.Errorf("outbound: err %v, or the PDF changed", err)
	}
}

// TestPDFBombIsRefused: a deflate bomb in a PDF stream is refused as a
// limit, in bounded memory.
func TestPDFBombIsRefused(t *testing.T) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(bytes.Repeat([]byte("q "), 100<<20))
	zw.Close()
	doc := []byte("%PDF-1.7\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n" + z.String() + "\nendstream\nendobj\n%%EOF\n")
	rw, _ := newTestRewriter(t, RewriteOptions{})
	if _, _, err := runInbound(t, rw, genericPart("application/pdf", "", "base64", doc)); !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
}
