package rewrite

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func TestCharsetOf(t *testing.T) {
	le16 := []byte("h\x00i\x00 \x00j\x00@\x00e\x00x\x00.\x00")
	be16 := []byte("\x00h\x00i\x00 \x00j\x00@\x00e\x00x\x00.")
	le32 := []byte("h\x00\x00\x00i\x00\x00\x00 \x00\x00\x00j\x00\x00\x00")
	be32 := []byte("\x00\x00\x00h\x00\x00\x00i\x00\x00\x00 \x00\x00\x00j")
	tests := []struct {
		label   string
		content []byte
		want    string // the encoding's name, "" for as-is, "error"
	}{
		{"", []byte("plain"), ""},
		{"UTF-8", []byte("plain"), ""},
		{"x-unknown", []byte("plain \xe9t\xe9"), ""},
		{"us-askey", []byte("plain"), ""},
		{`"charset=us-ascii"`, []byte("plain"), ""},
		{"charset=iso-8859-1", []byte("caf\xe9"), "ISO 8859-1"},
		{" ISO-8859-15 ", []byte("x"), "ISO 8859-15"},
		{"x-unknown", []byte("bin\x00\x01\x02ary"), "error"},
		{"x-unknown", []byte("\xfe\xffBOM"), "UTF-16BE (Use BOM)"},
		{"utf-7", []byte("a+AEA-b"), "UTF-7"},
		{"unicode-1-1-utf-7", []byte("a"), "UTF-7"},
		{"utf-16", le16, "UTF-16LE (Ignore BOM)"},
		{"utf-16", []byte("\xff\xfeh\x00"), "UTF-16LE (Use BOM)"},
		{"utf-16", []byte("\xfe\xff\x00h"), "UTF-16BE (Use BOM)"},
		{"utf-16", []byte("\x30\x42\x30\x44"), "UTF-16BE (Ignore BOM)"}, // no NUL: RFC 2781's default
		{"utf-16le", []byte("\x42\x30\x44\x30"), "UTF-16LE (Ignore BOM)"},
		{"", le16, "UTF-16LE (Ignore BOM)"},
		{"us-ascii", be16, "UTF-16BE (Ignore BOM)"},
		{"utf-32", le32, "UTF-32LE (Ignore BOM)"},
		{"", be32, "UTF-32BE (Ignore BOM)"},
		{"utf-32", []byte("\xff\xfe\x00\x00h\x00\x00\x00"), "UTF-32LE (Use BOM)"},
		{"", []byte("\x00\x00\xfe\xff\x00\x00\x00h"), "UTF-32BE (Use BOM)"},
		{"x-unknown", []byte("a\x00\x00b\x01\x00c\x02"), "error"},
	}
	for _, tt := range tests {
		enc, err := charsetOf(tt.label, tt.content)
		got := ""
		switch {
		case err != nil:
			got = "error"
		case enc != nil:
			got = fmt.Sprint(enc)
		}
		if got != tt.want {
			t.Errorf("charsetOf(%q, %q) = %s, want %s", tt.label, tt.content, got, tt.want)
		}
	}
}

// iconv converts s with the machine's iconv (glibc): the real producer of
// the UTF-16, UTF-32 and UTF-7 texts below, and their independent reader.
func iconv(t testing.TB, from, to string, s []byte) []byte {
	t.Helper()
	cmd := exec.Command("iconv", "-f", from, "-t", to)
	cmd.Stdin = bytes.NewReader(s)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iconv -f %s -t %s: %v", from, to, err)
	}
	return out
}

const formsText = "Grüße von Jörg, schreib an jane.doe@example.com oder bob@example.org.\r\nDanke!\r\n"

// charsetForms are text parts as mail clients label them, produced by
// iconv. Each leaked or was refused before issue 17: UTF-16 without a byte
// order mark was decoded big-endian (or not at all when unlabelled) and
// its addresses went through unseen; UTF-32, UTF-7 and unknown labels
// were refused as unscannable, bouncing the customer's mail.
var charsetForms = []struct {
	name, param, iconv string
	cte                string
}{
	{"utf-16 with BOM", "utf-16", "UTF-16", "base64"},
	{"utf-16 little-endian without BOM", "utf-16", "UTF-16LE", "base64"},
	{"utf-16be", "utf-16be", "UTF-16BE", "base64"},
	{"utf-16le unlabelled", "", "UTF-16LE", "base64"},
	{"utf-16le labelled us-ascii", "us-ascii", "UTF-16LE", "base64"},
	{"utf-32 with BOM", "utf-32", "UTF-32", "base64"},
	{"utf-32le unlabelled", "", "UTF-32LE", "base64"},
	{"utf-32be", "utf-32be", "UTF-32BE", "base64"},
	{"utf-7", "utf-7", "UTF-7", "7bit"},
	{"utf-7 quoted-printable", "unicode-1-1-utf-7", "UTF-7", "quoted-printable"},
	{"x-unknown", "x-unknown", "UTF-8", "8bit"},
	{"us-askey", "us-askey", "UTF-8", "base64"},
	{"label repeating charset=", `"charset=us-ascii"`, "UTF-8", "8bit"},
	{"unknown label on latin-1", "x-klingon", "ISO-8859-1", "quoted-printable"},
}

func charsetFormMessage(t testing.TB, param, cte string, content []byte) []byte {
	ct := "text/plain"
	if param != "" {
		ct += "; charset=" + param
	}
	var body []byte
	switch cte {
	case "base64":
		body = wrapBase64(content, "\r\n")
	case "quoted-printable":
		body = encodeCTE(&mimeHeader{}, cte, content, "\r\n", true)
	default:
		body = content
	}
	return append([]byte("From: support@company.example\r\nTo: agent@crm.example\r\nContent-Type: "+ct+
		"\r\nContent-Transfer-Encoding: "+cte+"\r\n\r\n"), body...)
}

// formBody decodes the body of a one-part message produced above with
// iconv, independently of the rewriter's charset code.
func formBody(t testing.TB, msg []byte, cte, charset string) string {
	t.Helper()
	_, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no body:\n%s", msg)
	}
	content, err := decodeCTE(cte, body)
	if err != nil {
		t.Fatal(err)
	}
	return string(iconv(t, charset, "UTF-8", content))
}

func TestCharsetFormsRewritten(t *testing.T) {
	for _, f := range charsetForms {
		t.Run(f.name, func(t *testing.T) {
			content := iconv(t, "UTF-8", f.iconv, []byte(formsText))
			msg := charsetFormMessage(t, f.param, f.cte, content)
			rw, _ := newTestRewriter(t, RewriteOptions{})
			out, rep, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatalf("Inbound: %v", err)
			}
			head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
			if !bytes.HasPrefix(out, head) {
				t.Errorf("header changed:\n%s", out)
			}
			text := formBody(t, out, f.cte, f.iconv)
			if strings.Contains(text, "@example.") || strings.Count(text, "@relay.company.example") != 2 || len(rep.Tokens) != 2 {
				t.Fatalf("addresses not replaced (%d tokens):\n%s", len(rep.Tokens), text)
			}
			if !strings.Contains(text, "Grüße von Jörg") || !strings.HasSuffix(text, "Danke!\r\n") {
				t.Fatalf("text damaged:\n%q", text)
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatalf("Outbound: %v", err)
			}
			if got := formBody(t, back, f.cte, f.iconv); got != formsText {
				t.Fatalf("outbound gave back\n%q\nwant\n%q", got, formsText)
			}
		})
	}
}

// TestUnknownLabelOnBinaryIsUnscannable: an unknown label is read as
// ASCII-compatible only where the bytes show it.
func TestUnknownLabelOnBinaryIsUnscannable(t *testing.T) {
	content := []byte("\x01\x00\x02\x00\x03 jane.doe@example.com \x00\x00\x07")
	msg := charsetFormMessage(t, "x-unknown", "base64", content)
	rw, _ := newTestRewriter(t, RewriteOptions{})
	if _, _, err := runInbound(t, rw, msg); !errors.Is(err, ErrUnscannable) {
		t.Fatalf("err = %v, want ErrUnscannable", err)
	}
	if b := base64.StdEncoding.EncodeToString(content); strings.Contains(b, "@") {
		t.Fatal("unreachable")
	}
}
