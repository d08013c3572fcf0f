package rewrite

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/attach"
)

// zipOf builds a zip of name/body pairs.
func zipOf(t testing.TB, kv ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(kv); i += 2 {
		w, _ := zw.Create(kv[i])
		w.Write([]byte(kv[i+1]))
	}
	zw.Close()
	return buf.Bytes()
}

// withAttachment is a message with a text part and one base64 attachment.
func withAttachment(ctype, name string, data []byte) []byte {
	var b strings.Builder
	b.WriteString("From: Jane <jane@example.net>\r\nTo: support@company.example\r\nSubject: doc\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n" +
		"Content-Type: text/plain\r\n\r\nsee attached\r\n--zz\r\nContent-Type: " + ctype + "\r\n" +
		"Content-Disposition: attachment; filename=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--zz--\r\n")
	return []byte(b.String())
}

// attachmentOf returns the decoded body of the message's second part and
// its header.
func attachmentOf(t testing.TB, msg []byte) ([]byte, map[string][]string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	mr.NextPart()
	p, err := mr.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(p)
	if p.Header.Get("Content-Transfer-Encoding") == "base64" {
		raw, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(raw), "\r\n", ""))
		if err != nil {
			t.Fatal(err)
		}
	}
	return raw, p.Header
}

const docType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

func testDocx(t testing.TB, text string) []byte {
	return zipOf(t, "[Content_Types].xml", "<Types/>",
		"word/document.xml", "<w:p><w:r><w:t>"+text+"</w:t></w:r></w:p>",
		"docProps/core.xml", "<dc:creator>jane@example.net</dc:creator>")
}

func TestAttachmentRewrittenBothWays(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	in := withAttachment(docType, "letter.docx", testDocx(t, "write to bob@example.org"))
	out, rep, err := runInbound(t, rw, in)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := attachmentOf(t, out)
	if bytes.Contains(doc, []byte("example.")) {
		t.Fatal("the docx is unchanged")
	}
	zr, err := zip.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("rewritten docx is no zip: %v", err)
	}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		if bytes.Contains(b, []byte("example.org")) || bytes.Contains(b, []byte("example.net")) {
			t.Errorf("%s still holds an address: %s", f.Name, b)
		}
	}
	if rep.Changed < 1 {
		t.Errorf("report: %d parts changed", rep.Changed)
	}
	// Outbound, the CRM's reply carrying the document restores it.
	var back bytes.Buffer
	if _, err := rw.Outbound(context.Background(), &back, bytes.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	doc, _ = attachmentOf(t, back.Bytes())
	zr, _ = zip.NewReader(bytes.NewReader(doc), int64(len(doc)))
	rc, _ := zr.File[1].Open()
	b, _ := io.ReadAll(rc)
	if !bytes.Contains(b, []byte("write to bob@example.org")) {
		t.Fatalf("outbound did not restore the document: %s", b)
	}
}

func TestAttachmentUnchangedIsIdentical(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	in := withAttachment("application/zip", "a.zip", zipOf(t, "a.txt", "nothing to see"))
	out, _, err := runInbound(t, rw, in)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(in, []byte("--zz\r\nContent-Type: application/zip"))
	if j := bytes.Index(out, []byte("--zz\r\nContent-Type: application/zip")); j < 0 || !bytes.Equal(in[i:], out[j:]) {
		t.Fatal("an attachment without addresses is not byte-identical")
	}
}

func TestAttachmentPolicy(t *testing.T) {
	doc := testDocx(t, "jane@example.net")
	pdf := []byte("%PDF-1.4\n(jane@example.net)\n%%EOF\n")
	enc := zipOfEncrypted(t)
	for _, c := range []struct {
		name   string
		pol    attach.Policy
		ctype  string
		file   string
		data   []byte
		err    error
		notice bool
	}{
		{"office strip", attach.Policy{Office: attach.Strip}, docType, "jane@example.net.docx", doc, nil, true},
		{"office refuse", attach.Policy{Office: attach.Refuse}, docType, "a.docx", doc, ErrUnscannable, false},
		{"pdf strip", attach.Policy{PDF: attach.Strip}, "application/pdf", "a.pdf", pdf, nil, true},
		{"pdf refuse", attach.Policy{PDF: attach.Refuse}, "application/pdf", "a.pdf", pdf, ErrUnscannable, false},
		{"docx sent as octet-stream", attach.Policy{Office: attach.Refuse}, "application/octet-stream", "x", doc, ErrUnscannable, false},
		{"encrypted member refused", attach.Policy{Unreadable: attach.Refuse}, "application/zip", "a.zip", enc, ErrUnscannable, false},
		{"unknown binary stripped", attach.Policy{Unreadable: attach.Strip}, "application/octet-stream", "a.bin", []byte("\x00\x01jane@example.net"), nil, true},
		{"bomb", attach.Policy{Limits: attach.Limits{MaxRatio: 10}}, "application/zip", "b.zip", zipOf(t, "z.txt", strings.Repeat("0", 4<<20)), ErrLimit, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rw, _ := newTestRewriter(t, RewriteOptions{Attachments: c.pol})
			out, rep, err := runInbound(t, rw, withAttachment(c.ctype, c.file, c.data))
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if err != nil {
				if strings.Contains(err.Error(), "example.net") {
					t.Fatalf("error holds an address: %v", err)
				}
				return
			}
			body, hdr := attachmentOf(t, out)
			if c.notice != strings.HasPrefix(string(body), "This attachment was removed") {
				t.Fatalf("notice = %q", body)
			}
			if c.notice && (len(rep.Stripped) != 1 || !bytes.Contains(body, []byte(rep.Stripped[0])) ||
				!strings.HasPrefix(hdr["Content-Type"][0], "text/plain")) {
				t.Fatalf("notice without its reference or type: %q %v", body, hdr)
			}
			if bytes.Contains(out, []byte("jane@example.net")) {
				t.Fatalf("the address survived: %s", out)
			}
			if c.notice && (len(rep.Quarantine) != 1 || !bytes.Equal(rep.Quarantine[0].Content, c.data) ||
				rep.Quarantine[0].Ref != rep.Stripped[0]) {
				t.Fatalf("the original is not kept for the quarantine: %+v", rep.Quarantine)
			}
		})
	}
}

func zipOfEncrypted(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "secret.txt", Flags: 0x1})
	w.Write([]byte("cipher text"))
	zw.Close()
	return buf.Bytes()
}

// TestGuardReadsAttachments: a docx with an address that reaches the
// guard (here: built by hand and given to Guard) is a leak.
func TestGuardReadsAttachments(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	msg := withAttachment(docType, "a.docx", testDocx(t, "bob@example.org"))
	if err := rw.Guard(context.Background(), bytes.NewReader(msg)); !errors.Is(err, ErrLeak) {
		t.Fatalf("guard over a docx with an address: %v", err)
	}
}

func TestDecodeAttachment(t *testing.T) {
	want := []byte("PK\x03\x04 some binary \xff\x00 content")
	enc := base64.StdEncoding.EncodeToString(want)
	for _, c := range []struct{ name, raw string }{
		{"crlf lines", enc[:20] + "\r\n" + enc[20:] + "\r\n"},
		{"lf lines", enc[:20] + "\n" + enc[20:] + "\n"},
		{"no final line end", enc},
		{"stray characters (lenient)", enc[:20] + " *\r\n" + enc[20:] + "\r\n"},
		{"unpadded (lenient)", strings.TrimRight(enc, "=") + "\r\n"},
	} {
		got, err := decodeAttachment("base64", []byte(c.raw))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q %v", c.name, got, err)
		}
	}
}

func TestSignaturePartPassesUnderRefuse(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{Attachments: attach.Policy{Unreadable: attach.Refuse}})
	sig := withAttachment("application/pkcs7-signature", "smime.p7s", []byte("0\x82\x01\x02 DER"))
	if _, _, err := runInbound(t, rw, sig); err != nil {
		t.Fatalf("an S/MIME signature part under unreadable: refuse: %v", err)
	}
	blob := withAttachment("application/octet-stream", "x.bin", []byte("0\x82\x01\x02 DER"))
	if _, _, err := runInbound(t, rw, blob); !errors.Is(err, ErrUnscannable) {
		t.Fatalf("the same bytes as an attachment: %v", err)
	}
}
