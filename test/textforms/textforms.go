// Package textforms builds the corpus of issue 17, item 4 and 6: text the
// rewriter used to let through with its addresses, or refuse, because of
// how it is labelled or written. Real producers make the content: iconv
// (glibc) the UTF-16, UTF-32, UTF-7 and Latin-1 texts, LibreOffice Writer
// (headless soffice, installed by test/tools/install-textforms.sh) the
// RTF.
// Each form comes with a reader of its own that renders what a person
// would see in the rewritten message (iconv decoding, LibreOffice
// converting the RTF back to text, format=flowed joined), so the check
// that no address survives does not use the rewriter's code.
//
// rewrite's tests run the corpus through the rewriter; cmd/proxy's run it
// through `proxy rewrite`.
package textforms

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

// Addresses are the customer addresses every form holds; none may survive
// an inbound rewrite, and outbound must give each back.
var Addresses = []string{"jane.doe@example.com", "bob.roe@example.org"}

// Form is one message of the corpus.
type Form struct {
	Name string
	Msg  []byte
	// Read renders what a reader sees of the message's interesting part.
	Read func(t testing.TB, msg []byte) string
	// Names are display names that must not reach the CRM either.
	Names []string
}

const letter = "Sehr geehrte Damen und Herren, bitte schreiben Sie an jane.doe@example.com " +
	"oder an Bob (bob.roe@example.org). Grüße, Jörg"

// Forms builds the corpus. LibreOffice's start makes it take seconds.
func Forms(t testing.TB) []Form {
	t.Helper()
	rtf := RTF(t, `<html><body><p>Sehr geehrte Damen und Herren, bitte schreiben Sie an <b>jane.doe</b>@example.com `+
		`oder an <a href="mailto:bob.roe@example.org">Bob</a> (bob.roe@exam<i>ple.org</i>).</p><p>Grüße, Jörg</p></body></html>`)
	text := []byte(strings.ReplaceAll(letter, ". ", ".\r\n") + "\r\n")
	forms := []Form{
		charsetForm(t, "utf-16le csv as octet-stream", "application/octet-stream; name=export.csv", "UTF-16LE", "base64", text),
		charsetForm(t, "utf-16 text, BOM, unlabelled", "text/plain", "UTF-16", "base64", text),
		charsetForm(t, "utf-32 text", "text/plain; charset=utf-32", "UTF-32", "base64", text),
		charsetForm(t, "utf-7 text", "text/plain; charset=utf-7", "UTF-7", "7bit", text),
		charsetForm(t, "unknown label on latin-1", "text/plain; charset=x-unknown", "ISO-8859-1", "quoted-printable", text),
		charsetForm(t, "label us-askey", "text/plain; charset=us-askey", "UTF-8", "8bit", text),
		charsetForm(t, "label repeating charset=", `text/plain; charset="charset=us-ascii"`, "UTF-8", "base64", text),
		charsetForm(t, "text as octet-stream", "application/octet-stream", "UTF-8", "base64", text),
		rtfForm("rtf as application/rtf", "application/rtf; name=letter.rtf", "base64", rtf),
		rtfForm("rtf as octet-stream", "application/octet-stream; name=letter.rtf", "base64", rtf),
		rtfForm("rtf as text/rtf", "text/rtf", "7bit", rtf),
		flowedForm(),
		bounceForm(),
	}
	return forms
}

// wrap makes a two-part message: a short note, and the part under test.
func wrap(ctype, cte string, content []byte) []byte {
	var body []byte
	switch cte {
	case "base64":
		body = []byte(Base64Lines(content))
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(content)
		w.Close()
		body = append(b.Bytes(), "\r\n"...)
	default: // sent as lines, as a mail client sends text: CRLF
		body = bytes.ReplaceAll(bytes.ReplaceAll(content, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		if !bytes.HasSuffix(body, []byte("\r\n")) {
			body = append(body, "\r\n"...)
		}
	}
	head := "From: support@company.example\r\nTo: agent@crm.example\r\nSubject: text forms\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"tf\"\r\n\r\n" +
		"--tf\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee below.\r\n" +
		"--tf\r\nContent-Type: " + ctype + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n"
	return append(append([]byte(head), body...), "--tf--\r\n"...)
}

// Part returns the transfer-decoded body of the message's second part,
// read with go-message (not with the rewriter's MIME code).
func Part(t testing.TB, msg []byte) []byte {
	t.Helper()
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && e == nil {
		t.Fatalf("go-message cannot read the message: %v", err)
	}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("not multipart:\n%s", msg)
	}
	var body []byte
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			t.Fatalf("part %d: %v", i, err)
		}
		if i == 1 {
			// go-message decodes the transfer encoding; a charset it
			// does not know leaves the bytes as they are.
			body, err = io.ReadAll(p.Body)
			if err != nil {
				t.Fatalf("part body: %v", err)
			}
		}
	}
	return body
}

func charsetForm(t testing.TB, name, ctype, charset, cte string, text []byte) Form {
	return Form{Name: name, Msg: wrap(ctype, cte, Iconv(t, "UTF-8", charset, text)),
		Read: func(t testing.TB, msg []byte) string { return string(Iconv(t, charset, "UTF-8", Part(t, msg))) }}
}

func rtfForm(name, ctype, cte string, rtf []byte) Form {
	return Form{Name: name, Msg: wrap(ctype, cte, rtf),
		Read: func(t testing.TB, msg []byte) string { return RTFText(t, Part(t, msg)) }}
}

// flowedForm: format=flowed; delsp=yes with soft line breaks inside both
// addresses (RFC 3676), one in a quote.
func flowedForm() Form {
	text := "Sehr geehrte Damen und Herren, bitte schreiben Sie an jane.doe@exa \r\nmple.com oder an \r\n" +
		"> Bob (bob.roe@exam \r\n> ple.org).\r\nGrüße, Jörg\r\n"
	return Form{Name: "format=flowed delsp=yes", Msg: wrap("text/plain; charset=utf-8; format=flowed; delsp=yes", "quoted-printable", []byte(text)),
		Read: func(t testing.TB, msg []byte) string { return Unflow(string(Part(t, msg))) }}
}

// bounceForm: a delivery report whose text/rfc822-headers part returns the
// original header, display names and all (RFC 6522).
func bounceForm() Form {
	headers := "From: Jane Doe <jane.doe@example.com>\r\nTo: \"Bob Roe\" <bob.roe@example.org>\r\n" +
		"Subject: order 1234\r\nMessage-ID: <order-1234@mail.example.net>\r\n"
	msg := "From: MAILER-DAEMON@company.example\r\nTo: support@company.example\r\nSubject: Undelivered Mail\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"tf\"\r\n\r\n" +
		"--tf\r\nContent-Type: text/plain\r\n\r\nThe message could not be delivered.\r\n" +
		"--tf\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers + "--tf--\r\n"
	return Form{Name: "bounce with text/rfc822-headers", Msg: []byte(msg), Names: []string{"Jane Doe", "Bob Roe"},
		Read: func(t testing.TB, msg []byte) string { return string(Part(t, msg)) }}
}

// Unflow joins format=flowed; delsp=yes text as a reader does (RFC 3676
// section 4: quote depth, stuffing, soft breaks).
func Unflow(s string) string {
	var out strings.Builder
	depth, soft := -1, false
	for _, line := range strings.SplitAfter(s, "\r\n") {
		line = strings.TrimSuffix(line, "\r\n")
		d := len(line) - len(strings.TrimLeft(line, ">"))
		content := strings.TrimPrefix(line[d:], " ")
		if soft && d != depth {
			out.WriteString("\r\n")
		}
		if !soft || d != depth {
			out.WriteString(strings.Repeat(">", d))
			if d > 0 {
				out.WriteString(" ")
			}
		}
		depth, soft = d, strings.HasSuffix(content, " ") && content != "-- "
		if soft {
			content = strings.TrimSuffix(content, " ")
		}
		out.WriteString(content)
		if !soft {
			out.WriteString("\r\n")
		}
	}
	return out.String()
}

// Iconv converts b with the machine's iconv (glibc).
func Iconv(t testing.TB, from, to string, b []byte) []byte {
	t.Helper()
	cmd := exec.Command("iconv", "-f", from, "-t", to)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("iconv -f %s -t %s: %v", from, to, err)
	}
	return out
}

var sofficeMu sync.Mutex // one LibreOffice at a time per test binary

// soffice returns the path of LibreOffice's soffice.
func soffice(t testing.TB) string {
	return Tool(t, "soffice")
}

// Tool returns the path of a program test/tools/install-textforms.sh
// installs (soffice, pdftotext, /usr/bin/python3 with reportlab), running
// the script when it is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	present := func() (string, bool) {
		if name == "python3" { // Debian's, which sees Debian's modules
			err := exec.Command("/usr/bin/python3", "-c", "import reportlab").Run()
			return "/usr/bin/python3", err == nil
		}
		p, err := exec.LookPath(name)
		return p, err == nil
	}
	if p, ok := present(); ok {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "tools", "install-textforms.sh")
	if out, err := tools.RunScript(script); err != nil {
		t.Fatalf("%s is missing and %s failed: %v\n%s", name, script, err, out)
	}
	p, ok := present()
	if !ok {
		t.Fatalf("%s not found after install-textforms.sh", name)
	}
	return p
}

// convert has LibreOffice convert file in.<ext> to format, with a profile
// of its own (a shared one lets concurrent instances collide).
func convert(t testing.TB, in []byte, ext, format string) []byte {
	t.Helper()
	bin := soffice(t)
	sofficeMu.Lock()
	defer sofficeMu.Unlock()
	dir := t.TempDir()
	src := filepath.Join(dir, "doc."+ext)
	if err := os.WriteFile(src, in, 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--headless", "--norestore", "--convert-to", format, "--outdir", outDir, src)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("soffice --convert-to %s: %v\n%s", format, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(outDir, "doc.*"))
	if len(files) != 1 {
		t.Fatalf("soffice --convert-to %s wrote %v", format, files)
	}
	out, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RTF is html as LibreOffice Writer saves it in Rich Text Format.
func RTF(t testing.TB, html string) []byte {
	return convert(t, []byte(html), "html", `rtf:Rich Text Format`)
}

// RTFText is rtf as LibreOffice Writer reads it, saved as UTF-8 text; a
// document it cannot open fails the test.
func RTFText(t testing.TB, rtf []byte) string {
	return string(convert(t, rtf, "rtf", `txt:Text (encoded):UTF8`))
}

// ReportLabPDF runs a Python body with reportlab's canvas module imported
// and `path` naming the file it must write, and returns the PDF it wrote.
func ReportLabPDF(t testing.TB, body string) []byte {
	t.Helper()
	py := Tool(t, "python3")
	path := filepath.Join(t.TempDir(), "doc.pdf")
	script := "from reportlab.pdfgen import canvas\npath = " + pyQuote(path) + "\n" + body
	if out, err := exec.Command(py, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("reportlab: %v\n%s", err, out)
	}
	pdf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

func pyQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// PDFText is a PDF as poppler's pdftotext reads it; a file it cannot
// open fails the test.
func PDFText(t testing.TB, pdf []byte) string {
	t.Helper()
	bin := Tool(t, "pdftotext")
	cmd := exec.Command(bin, "-", "-")
	cmd.Stdin = bytes.NewReader(pdf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// LibreOfficePDF is text as LibreOffice Writer exports it to PDF: its
// fonts embedded as subsets whose codes are no characters, read through
// ToUnicode CMaps.
func LibreOfficePDF(t testing.TB, text string) []byte {
	return convert(t, []byte(text), "txt", "pdf")
}

// Base64Lines is b in base64, in lines of 76 characters ending in CRLF
// (RFC 2045 section 6.8).
func Base64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return out.String() + s + "\r\n"
}
