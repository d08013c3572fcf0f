package rewrite

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/attach"
	"github.com/tokenproxy/tokenproxy/test/textforms"
)

const invoiceWithAddress = `c = canvas.Canvas(path, pageCompression=1)
c.setAuthor("Jane Doe")
c.drawString(72, 720, "Invoice 1234 for jane.doe@example.com")
c.save()`

// TestPDFNamingACustomer: a PDF whose compressed page names the customer
// (ReportLab; LibreOffice, whose subset fonts are read through ToUnicode
// CMaps), under any type it is sent as. Before issue 17 it reached the
// CRM (the guard saw compressed bytes only); then it was refused, which
// bounced customers sending their own invoice. A PDF is not rewritten, so
// it follows rewrite.attachments.pdf: strip (the default) relays a notice
// and hands the original over for the quarantine; refuse and pass refuse
// the message (ErrUnscannable: 554 5.6.0). Either way no token is staged
// for the address in the PDF, and no address is in the output or error.
func TestPDFNamingACustomer(t *testing.T) {
	doc := textforms.ReportLabPDF(t, invoiceWithAddress)
	if !strings.Contains(textforms.PDFText(t, doc), "jane.doe@example.com") {
		t.Fatal("pdftotext does not see the address: the test proves nothing")
	}
	lo := textforms.LibreOfficePDF(t, "Rechnung\nAn jane.doe@example.com\n")
	forms := []struct {
		ctype, disp string
		doc         []byte
	}{
		{"application/pdf", "", doc},
		{"application/octet-stream", "attachment; filename=invoice.pdf", doc},
		{"application/octet-stream", "", doc},
		{"application/pdf", "attachment; filename=Rechnung.pdf", lo},
	}
	for _, pol := range []struct {
		pdf   attach.Action
		strip bool
	}{{"", true}, {attach.Strip, true}, {attach.Refuse, false}, {attach.Pass, false}} {
		for _, f := range forms {
			name := fmt.Sprintf("pdf %q, %s %s", pol.pdf, f.ctype, f.disp)
			msg := genericPart(f.ctype, f.disp, "base64", f.doc)
			rw, m := newTestRewriter(t, RewriteOptions{Attachments: attach.Policy{PDF: pol.pdf}})
			st := m.Begin()
			out, rep, err := runStaged(rw, st, msg)
			if !pol.strip {
				if !errors.Is(err, ErrUnscannable) || strings.Contains(err.Error(), "jane") {
					t.Fatalf("%s: err = %v, want ErrUnscannable", name, err)
				}
			} else {
				checkStrippedPDF(t, name, out, rep, err, f.doc)
			}
			if st.Staged() != 0 || liveTokens(t, m) != 0 {
				t.Fatalf("%s: %d tokens staged, %d kept for an address only the PDF holds", name, st.Staged(), liveTokens(t, m))
			}
		}
	}
}

// checkStrippedPDF: the notice stands where the PDF was, and the original
// is kept whole for the quarantine (pdftotext still reads it).
func checkStrippedPDF(t *testing.T, name string, out []byte, rep *Report, err error, doc []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if bytes.Contains(out, []byte("%PDF")) || bytes.Contains(out, []byte(base64.StdEncoding.EncodeToString(doc[:30]))) ||
		!bytes.Contains(out, []byte("This attachment was removed")) || !bytes.Contains(out, []byte("Kind: pdf")) {
		t.Fatalf("%s: no notice in place of the PDF:\n%s", name, out)
	}
	if len(rep.Quarantine) != 1 || !bytes.Equal(rep.Quarantine[0].Content, doc) || rep.Quarantine[0].Kind != "pdf" ||
		!bytes.Contains(out, []byte(rep.Quarantine[0].Ref)) {
		t.Fatalf("%s: the original is not kept for the quarantine (%d parts)", name, len(rep.Quarantine))
	}
	if !strings.Contains(textforms.PDFText(t, rep.Quarantine[0].Content), "jane.doe@example.com") {
		t.Fatalf("%s: the quarantined PDF does not read as the original", name)
	}
}

// TestLargePDF: a PDF is read up to the attachment limit (max_bytes), as
// an office document is opened: a 10 MB PDF naming a customer is
// stripped (before, PDFs over 8 MiB of base64 passed unread). One over
// the limit is unreadable, and passes by default as before.
func TestLargePDF(t *testing.T) {
	doc := textforms.ReportLabPDF(t, invoiceWithAddress)
	eof := bytes.LastIndex(doc, []byte("%%EOF"))
	pad := func(n int) []byte { // an uncompressed stream of text naming nobody
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "BT (order %d shipped %x) Tj ET\n", i*7919%1000003, i*104729)
		}
		obj := fmt.Sprintf("99 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", b.Len(), b.Bytes())
		return append(append(bytes.Clone(doc[:eof]), obj...), doc[eof:]...)
	}
	large, tooLarge := pad(10<<20), pad(17<<20)
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, rep, err := runInbound(t, rw, genericPart("application/pdf", "", "base64", large))
	if err != nil || len(rep.Quarantine) != 1 || !bytes.Equal(rep.Quarantine[0].Content, large) ||
		!bytes.Contains(out, []byte("This attachment was removed")) {
		t.Fatalf("10 MB PDF naming a customer: err %v, %d stripped", err, len(rep.Quarantine))
	}
	msg := genericPart("application/pdf", "", "base64", tooLarge)
	out, rep, err = runInbound(t, rw, msg)
	if err != nil || len(rep.Quarantine) != 0 || !bytes.Equal(out, msg) {
		t.Fatalf("17 MB PDF (over max_bytes): err %v, %d stripped, changed %v", err, len(rep.Quarantine), !bytes.Equal(out, msg))
	}
	rw, _ = newTestRewriter(t, RewriteOptions{Attachments: attach.Policy{Unreadable: attach.Refuse}})
	if _, _, err := runInbound(t, rw, msg); !errors.Is(err, ErrUnscannable) {
		t.Fatalf("17 MB PDF, unreadable: refuse: err = %v", err)
	}
}

// TestPDFUnreadableFollowsPolicy: a PDF that cannot be read (encrypted)
// is the unreadable kind: it passes by default, as before, and is refused
// or stripped when that kind's policy says so.
func TestPDFUnreadableFollowsPolicy(t *testing.T) {
	encrypted := append(textforms.ReportLabPDF(t, invoiceWithAddress), "trailer << /Encrypt 9 0 R >>\n"...)
	msg := genericPart("application/pdf", "", "base64", encrypted)
	for _, c := range []struct {
		unreadable attach.Action
		err        error
		notice     bool
	}{{"", nil, false}, {attach.Refuse, ErrUnscannable, false}, {attach.Strip, nil, true}} {
		rw, _ := newTestRewriter(t, RewriteOptions{Attachments: attach.Policy{Unreadable: c.unreadable}})
		out, rep, err := runInbound(t, rw, msg)
		if !errors.Is(err, c.err) {
			t.Fatalf("unreadable %q: err = %v, want %v", c.unreadable, err, c.err)
		}
		if err == nil && c.notice != (len(rep.Quarantine) == 1) || err == nil && !c.notice && !bytes.Equal(out, msg) {
			t.Fatalf("unreadable %q: stripped %d, changed %v", c.unreadable, len(rep.Quarantine), !bytes.Equal(out, msg))
		}
	}
}

// TestGuardRefusesPDFNamingACustomer: whatever the inbound pass did, a
// PDF naming a customer that reaches the guard is refused.
func TestGuardRefusesPDFNamingACustomer(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msg := genericPart("application/pdf", "", "base64", textforms.ReportLabPDF(t, invoiceWithAddress))
	if err := rw.Guard(context.Background(), bytes.NewReader(msg)); !errors.Is(err, ErrUnscannable) {
		t.Fatalf("guard: %v", err)
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

// TestPDFInArchive: a PDF inside a zip is read as an attached one is.
// One naming a customer strips the zip that holds it (the default) or
// refuses the message; one naming nobody stays in the rewritten zip byte
// for byte. The guard reads PDFs in archives too: before, a PDF member
// passed unread by both passes.
func TestPDFInArchive(t *testing.T) {
	named := string(textforms.ReportLabPDF(t, invoiceWithAddress))
	clean := string(textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice 1234')\nc.save()"))
	withNamed := zipOf(t, "notes.txt", "nothing here", "invoice.pdf", named)
	for _, c := range []struct {
		pdf    attach.Action
		err    error
		notice bool
	}{{"", nil, true}, {attach.Refuse, ErrUnscannable, false}, {attach.Pass, ErrUnscannable, false}} {
		rw, _ := newTestRewriter(t, RewriteOptions{Attachments: attach.Policy{PDF: c.pdf}})
		out, rep, err := runInbound(t, rw, withAttachment("application/zip", "docs.zip", withNamed))
		if !errors.Is(err, c.err) || err != nil && strings.Contains(err.Error(), "jane") {
			t.Fatalf("pdf %q: err = %v, want %v", c.pdf, err, c.err)
		}
		if err == nil {
			body, _ := attachmentOf(t, out)
			if c.notice != bytes.HasPrefix(body, []byte("This attachment was removed")) || len(rep.Quarantine) != 1 ||
				!bytes.Equal(rep.Quarantine[0].Content, withNamed) {
				t.Fatalf("pdf %q: the zip was not stripped and kept: %q", c.pdf, body)
			}
		}
	}
	rw, _ := newTestRewriter(t, RewriteOptions{})
	out, _, err := runInbound(t, rw, withAttachment("application/zip", "docs.zip", zipOf(t, "a.txt", "jane.doe@example.com", "invoice.pdf", clean)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := attachmentOf(t, out)
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil || len(zr.File) != 2 {
		t.Fatalf("rewritten zip: %v", err)
	}
	if got := readZipMember(t, zr.File[1]); got != clean {
		t.Fatal("the PDF naming nobody changed in the rewritten zip")
	}
	if got := readZipMember(t, zr.File[0]); strings.Contains(got, "jane") {
		t.Fatal("the text member was not rewritten")
	}
	msg := withAttachment("application/zip", "docs.zip", zipOf(t, "invoice.pdf", named))
	if err := rw.Guard(context.Background(), bytes.NewReader(msg)); !errors.Is(err, ErrLeak) {
		t.Fatalf("guard over a zip holding a PDF naming a customer: %v", err)
	}
}

func readZipMember(t *testing.T, f *zip.File) string {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
