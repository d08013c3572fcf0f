package rewrite

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSniffText(t *testing.T) {
	le16 := iconv(t, "UTF-8", "UTF-16LE", []byte("name,email\r\nJane,jane@example.com\r\n"))
	tests := []struct {
		name, content string
		want          string // "" not text
	}{
		{"notes.txt", "hello jane@example.com\r\n", "text/plain"},
		{"", "hello\r\n", "text/plain"},
		{"list.csv", "a,b\r\n", "text/csv"},
		{"data.json", `{"a": 1}`, "application/json"},
		{"INVITE.ICS", "BEGIN:VCALENDAR\r\n", "text/calendar"},
		{"card.vcf", "BEGIN:VCARD\r\n", "text/vcard"},
		{"saved.eml", "From: a@b.example\r\n\r\nx\r\n", "message/rfc822"},
		{"letter.rtf", `{\rtf1 x}`, "application/rtf"},
		{"", `{\rtf1\ansi x}`, "application/rtf"},
		{"", "<html><body>x</body></html>", "text/html"},
		{"=?utf-8?q?notes=2Etxt?=", "x\r\n", "text/plain"},
		{"export.csv", string(le16), "text/csv"},
		{"", "\xff\xfe" + string(le16), "text/plain"},
		{"caf\xe9.txt", "caf\xe9 au lait", "text/plain"}, // 8-bit text is text
		{"", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ""},
		{"", "PK\x03\x04\x14\x00\x00\x00", ""},
		{"", "%PDF-1.4\n1 0 obj\n", ""},
		{"report.pdf", "plain text after all", ""},
		{"notes.txt", "text\x00with\x01binary\x02", ""},
		{"", "   \r\n", ""},
	}
	for _, tt := range tests {
		got, ok := sniffText(tt.name, []byte(tt.content))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("sniffText(%q, %q) = %q, %v; want %q", tt.name, tt.content, got, ok, tt.want)
		}
	}
}

// genericPart is a message whose only attachment has a generic type.
func genericPart(ctype, disposition, cte string, body []byte) []byte {
	h := "From: support@company.example\r\nTo: agent@crm.example\r\nContent-Type: multipart/mixed; boundary=g\r\n\r\n" +
		"--g\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n--g\r\n"
	if ctype != "" {
		h += "Content-Type: " + ctype + "\r\n"
	}
	if disposition != "" {
		h += "Content-Disposition: " + disposition + "\r\n"
	}
	h += "Content-Transfer-Encoding: " + cte + "\r\n\r\n"
	switch cte {
	case "base64":
		body = wrapBase64(body, "\r\n")
	case "quoted-printable":
		body = encodeCTE(&mimeHeader{}, cte, body, "\r\n", true)
	}
	return append(append([]byte(h), body...), "--g--\r\n"...)
}

// attachedContent decodes the attachment of a message made by genericPart.
func attachedContent(t *testing.T, msg []byte, cte string) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("Content-Transfer-Encoding: "+cte+"\r\n\r\n"))
	if i < 0 {
		t.Fatalf("attachment header changed:\n%s", msg)
	}
	body := msg[i+len("Content-Transfer-Encoding: "+cte+"\r\n\r\n"):]
	body = body[:bytes.LastIndex(body, []byte("--g--"))]
	content, err := decodeCTE(cte, body)
	if err != nil {
		t.Fatal(err)
	}
	return content
}

// TestGenericTypesReadAsText: text attached under a type that names no
// content is rewritten. Before issue 17 such a part streamed as it came:
// base64 hid its addresses from the rewriter and the guard alike, and the
// CRM received them (a 7bit one was refused by the guard instead).
func TestGenericTypesReadAsText(t *testing.T) {
	csv := "name,email\r\nJane Doe,jane.doe@example.com\r\nBob,bob@example.org\r\n"
	tests := []struct {
		name, ctype, disp, cte string
		content                []byte
		decode                 func([]byte) string // the test's own reader of the result
	}{
		{"octet-stream csv", "application/octet-stream; name=customers.csv", "attachment; filename=customers.csv", "base64", []byte(csv), nil},
		{"octet-stream txt 7bit", "application/octet-stream", `attachment; filename="notes.txt"`, "7bit", []byte(csv), nil},
		{"octet-stream log qp", "application/octet-stream", "attachment; filename*=utf-8''server%2Elog", "quoted-printable", []byte(csv), nil},
		{"x-unknown without a name", "application/x-unknown", "", "base64", []byte(csv), nil},
		{"binary/octet-stream json", "binary/octet-stream", "attachment; filename=a.json", "base64", []byte(`{"email": "jane.doe@example.com", "cc": "bob@example.org"}`), nil},
		{"no type at all", "", "attachment; filename=notes.txt", "base64", []byte(csv), nil},
		{"a type that is no type", "octet-stream", "", "base64", []byte(csv), nil},
		{"html by content", "application/octet-stream", "", "base64",
			[]byte(`<html><a href="mailto:jane.doe@example.com">Jane</a> bob&#64;example.org</html>`),
			func(b []byte) string { return strings.ReplaceAll(string(b), "&#64;", "@") }},
		{"calendar by name", "application/octet-stream", "attachment; filename=invite.ics", "base64",
			[]byte("BEGIN:VCALENDAR\r\nATTENDEE;CN=Jane:mailto:jane.doe@exam\r\n ple.com\r\nORGANIZER:mailto:bob@example.org\r\nEND:VCALENDAR\r\n"),
			func(b []byte) string { return strings.ReplaceAll(string(b), "\r\n ", "") }},
		{"saved message by name", "application/octet-stream", "attachment; filename=fwd.eml", "base64",
			[]byte("From: Jane Doe <jane.doe@example.com>\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nhi\r\n"), nil},
		{"utf-16le csv without BOM", "application/octet-stream", "attachment; filename=export.csv", "base64",
			iconv(t, "UTF-8", "UTF-16LE", []byte(csv)), func(b []byte) string { return string(iconv(t, "UTF-16LE", "UTF-8", b)) }},
		{"utf-16 text with BOM, no name", "application/octet-stream", "", "base64",
			iconv(t, "UTF-8", "UTF-16", []byte(csv)), func(b []byte) string { return string(iconv(t, "UTF-16", "UTF-8", b)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := genericPart(tt.ctype, tt.disp, tt.cte, tt.content)
			rw, _ := newTestRewriter(t, RewriteOptions{DisplayNames: NamesKeep})
			out, rep, err := runInbound(t, rw, msg)
			if err != nil {
				t.Fatal(err)
			}
			decode := tt.decode
			if decode == nil {
				decode = func(b []byte) string { return string(b) }
			}
			got := decode(attachedContent(t, out, tt.cte))
			if strings.Contains(got, "@example.") || strings.Count(got, "@relay.company.example") < 2 || len(rep.Tokens) != 2 {
				t.Fatalf("%d tokens; the attachment reads:\n%s", len(rep.Tokens), got)
			}
			back, err := runOutbound(t, rw, out)
			if err != nil {
				t.Fatal(err)
			}
			if got := decode(attachedContent(t, back, tt.cte)); got != decode(tt.content) {
				t.Fatalf("outbound gave back\n%q\nwant\n%q", got, decode(tt.content))
			}
		})
	}
}

// TestGenericBinaryUntouched: binary content under a generic type streams
// byte for byte, as before; so does text under a binary file name, and
// text too large to read whole.
func TestGenericBinaryUntouched(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 1, 2, 3, 'a'}, 5000)...)
	big := bytes.Repeat([]byte("a line of text without an address in it, long enough to be big\r\n"), maxSniffedTextBytes/60)
	for _, msg := range [][]byte{
		genericPart("application/octet-stream", "attachment; filename=x.png", "base64", png),
		genericPart("application/octet-stream", "attachment; filename=report.pdf", "base64", []byte("%PDF-1.4 jane\r\n")),
		genericPart("application/octet-stream", "attachment; filename=a.txt", "base64", append([]byte("text first\r\n"), png...)),
		genericPart("application/octet-stream", "attachment; filename=big.txt", "base64", big),
	} {
		rw, _ := newTestRewriter(t, RewriteOptions{})
		out, _, err := runInbound(t, rw, msg)
		if err != nil || !bytes.Equal(out, msg) {
			t.Errorf("err %v; binary part changed", err)
		}
	}
}

// TestUntypedPartByName: a part without a Content-Type is text/plain
// (RFC 2045 section 5.2), but its file name may say which text: an RTF
// read as plain text kept its \'40 escapes, a saved message its display
// names. A binary name is sniffed, not rewritten as text.
func TestUntypedPartByName(t *testing.T) {
	rtf := genericPart("", "attachment; filename=letter.rtf", "base64", []byte(`{\rtf1 jane.doe\'40example.com}`))
	eml := genericPart("", "attachment; filename=fwd.eml", "7bit", []byte("From: Jane Doe <jane.doe@example.com>\r\n\r\nhi\r\n"))
	rw, _ := newTestRewriter(t, RewriteOptions{})
	for name, msg := range map[string][]byte{"rtf": rtf, "eml": eml} {
		out, rep, err := runInbound(t, rw, msg)
		if err != nil || len(rep.Tokens) != 1 || bytes.Contains(out, []byte("Jane Doe")) {
			t.Errorf("%s: err %v, %d tokens:\n%s", name, err, len(rep.Tokens), out)
		}
		content := string(attachedContent(t, out, map[string]string{"rtf": "base64", "eml": "7bit"}[name]))
		if strings.Contains(content, "example.com") || strings.Contains(content, `\'40`) {
			t.Errorf("%s: the address survives:\n%s", name, content)
		}
	}
	zip := genericPart("", "attachment; filename=a.zip", "base64", []byte("PK\x03\x04 jane.doe@example.com \x00\x01"))
	out, _, err := runInbound(t, rw, zip)
	if !errors.Is(err, ErrLeak) && (err != nil || !bytes.Equal(out, zip)) {
		t.Errorf("zip without a type: err %v, or changed", err)
	}
}
