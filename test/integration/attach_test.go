package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/attachcorpus"
)

// The attachment corpus (issue 17 items 1 and 3): documents made by real
// producers (python-docx, openpyxl, LibreOffice, Python's zipfile and
// tarfile; test/attachcorpus/make_documents.py), each attached to a
// customer message, run through `proxy rewrite` and through the inbound
// route; independent readers (python-docx and openpyxl reading the
// result back, unzip, tar, LibreOffice converting it to text) must open
// every rewritten document and see no customer address in it.

// corpusAddresses are the customer addresses the documents name.
var corpusAddresses = []string{"jane.doe@example.com", "bob.roe@example.org", "carol@example.net", "dave@example.com"}

var corpusTypes = map[string]string{
	".docx":   "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx":   "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx":   "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":    "application/vnd.oasis.opendocument.text",
	".ods":    "application/vnd.oasis.opendocument.spreadsheet",
	".odp":    "application/vnd.oasis.opendocument.presentation",
	".zip":    "application/zip",
	".tar.gz": "application/octet-stream", // sniffed
}

var (
	corpusOnce sync.Once
	corpusDir  string
	corpusErr  error
)

// attachmentCorpus installs the producers (test/tools/install-office.sh)
// and writes the documents once per test binary.
func attachmentCorpus(t *testing.T) string {
	t.Helper()
	attachcorpus.Install(t) // once per test binary
	corpusOnce.Do(func() {
		corpusDir, corpusErr = os.MkdirTemp("", "tokenproxy-attach-corpus-")
		if corpusErr != nil {
			return
		}
		profile := filepath.Join(corpusDir, ".soffice")
		cmd := exec.Command("/usr/bin/python3", filepath.Join(attachcorpus.Dir(), "make_documents.py"), corpusDir, profile)
		if out, err := cmd.CombinedOutput(); err != nil {
			corpusErr = fmt.Errorf("make_documents.py: %v\n%s", err, out)
		}
	})
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	return corpusDir
}

// corpusFiles lists the documents, sorted.
func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) < 8 {
		t.Fatalf("the corpus holds only %v", names)
	}
	return names
}

func corpusType(name string) string {
	for ext, ct := range corpusTypes {
		if strings.HasSuffix(name, ext) {
			return ct
		}
	}
	return "application/octet-stream"
}

// attachmentMessage is a customer message carrying one document.
func attachmentMessage(t *testing.T, name string, doc []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fmt.Fprintf(&b, "From: Jane Doe <jane.doe@example.com>\r\nTo: support@company.example\r\n"+
		"Subject: %s\r\nMessage-Id: <%s@mail.example.com>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=%s\r\n\r\n", name, strings.ReplaceAll(name, ".", "-"), mw.Boundary())
	w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}})
	io.WriteString(w, "The document is attached.\r\n")
	w, _ = mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {corpusType(name)},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": name})},
		"Content-Transfer-Encoding": {"base64"},
	})
	enc := base64.StdEncoding.EncodeToString(doc)
	for len(enc) > 76 {
		io.WriteString(w, enc[:76]+"\r\n")
		enc = enc[76:]
	}
	io.WriteString(w, enc+"\r\n")
	mw.Close()
	return b.Bytes()
}

// attachmentsOf decodes the attachments of a message into dir, by file name.
func attachmentsOf(t *testing.T, msg []byte, dir string) []string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("not a message: %v", err)
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	var files []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() == "" {
			continue
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("attachment %s: %v", p.FileName(), err)
		}
		path := filepath.Join(dir, p.FileName())
		os.WriteFile(path, body, 0o644)
		files = append(files, path)
	}
	return files
}

// readerViews returns what the independent readers see in a document:
// unzip -p (every member, inflated) or tar -xzO, and python-docx or
// openpyxl for docx and xlsx.
func readerViews(t *testing.T, path string) map[string]string {
	t.Helper()
	views := map[string]string{}
	run := func(label string, name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s cannot read %s: %v\n%s", label, filepath.Base(path), err, out)
		}
		views[label] = string(out)
	}
	if strings.HasSuffix(path, ".tar.gz") {
		run("tar", "tar", "-xzOf", path)
	} else {
		run("unzip", "unzip", "-p", path)
		zipIntegrity(t, path)
	}
	if strings.HasSuffix(path, ".docx") || strings.HasSuffix(path, ".xlsx") {
		run("python", "/usr/bin/python3", filepath.Join(attachcorpus.Dir(), "read_documents.py"), path)
	}
	return views
}

// zipIntegrity checks a package as two other zip readers do: unzip -t
// and Python's zipfile.testzip inflate every member and check its CRC-32
// and sizes against the headers (a spliced member's are written by us,
// rewrite/attach/splice.go).
func zipIntegrity(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("unzip", "-tq", path).CombinedOutput(); err != nil {
		t.Fatalf("unzip -t %s: %v\n%s", filepath.Base(path), err, out)
	}
	script := `import sys, zipfile
bad = zipfile.ZipFile(sys.argv[1]).testzip()
sys.exit("damaged member: %s" % bad if bad else 0)`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("python zipfile.testzip %s: %v\n%s", filepath.Base(path), err, out)
	}
}

// libreOfficeText converts the documents to text (csv for spreadsheets)
// with LibreOffice and returns the text of each, by base name.
func libreOfficeText(t *testing.T, files []string) map[string]string {
	t.Helper()
	out := t.TempDir()
	profile := "file://" + filepath.Join(corpusDir, ".soffice")
	convert := func(format string, in []string) {
		if len(in) == 0 {
			return
		}
		args := append([]string{"-env:UserInstallation=" + profile, "--headless", "--norestore",
			"--convert-to", format, "--outdir", out}, in...)
		if b, err := exec.Command("soffice", args...).CombinedOutput(); err != nil {
			t.Fatalf("soffice --convert-to %s: %v\n%s", format, err, b)
		}
	}
	var texts, sheets, slides []string
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".docx", ".odt":
			texts = append(texts, f)
		case ".xlsx", ".ods":
			sheets = append(sheets, f)
		case ".pptx", ".odp":
			slides = append(slides, f)
		}
	}
	convert("txt:Text", texts)
	convert("csv", sheets)
	// Presentations have no text export: that they convert to PDF shows
	// they open (unzip and the XML show what they hold).
	for _, f := range slides { // one at a time: slides.pptx and slides.odp share the name
		convert("pdf", []string{f})
		pdf := filepath.Join(out, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))+".pdf")
		if fi, err := os.Stat(pdf); err != nil || fi.Size() == 0 {
			t.Fatalf("LibreOffice cannot open %s: %v", filepath.Base(f), err)
		}
		os.Remove(pdf)
	}
	views := map[string]string{}
	for _, f := range append(texts, sheets...) {
		base := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		matches, _ := filepath.Glob(filepath.Join(out, base+".*"))
		for _, m := range matches {
			b, _ := os.ReadFile(m)
			views[filepath.Base(f)] += string(b)
		}
		if views[filepath.Base(f)] == "" {
			t.Fatalf("LibreOffice produced nothing for %s: it does not open", filepath.Base(f))
		}
	}
	return views
}

// checkNoAddress fails on any corpus address in a reader's view.
func checkNoAddress(t *testing.T, what, view string) {
	t.Helper()
	for _, a := range corpusAddresses {
		if strings.Contains(strings.ToLower(view), a) {
			t.Errorf("%s still shows %s:\n%.2000s", what, a, view)
		}
	}
}

// corpusConfig writes a `proxy rewrite` configuration: local keyring, the
// quickstart's domains.
func corpusConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(config, []byte("data_dir: "+filepath.Join(dir, "data")+`
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
`), 0o600)
	return config
}

func proxyRewrite(t *testing.T, config, route string, msg []byte) ([]byte, string, int) {
	t.Helper()
	r := runProxyInput(t, config, msg, "rewrite", "--route", route)
	return []byte(r.stdout), r.log, r.code
}

// TestAttachmentCorpusProxyRewrite: every document of the corpus, through
// `proxy rewrite --route inbound`, opens in every reader and shows no
// customer address; outbound brings the addresses back.
func TestAttachmentCorpusProxyRewrite(t *testing.T) {
	dir := attachmentCorpus(t)
	config := corpusConfig(t)
	msgDir, outDir := filepath.Join(dir, "messages"), t.TempDir()
	os.MkdirAll(msgDir, 0o755)
	var rewritten []string
	for _, name := range corpusFiles(t, dir) {
		doc, _ := os.ReadFile(filepath.Join(dir, name))
		// The control: the readers see the addresses in the original.
		for label, view := range readerViews(t, filepath.Join(dir, name)) {
			if !strings.Contains(view, "jane.doe@example.com") && !strings.Contains(view, "bob.roe@example.org") {
				t.Fatalf("control: %s shows no address in the original %s:\n%.1000s", label, name, view)
			}
		}
		msg := attachmentMessage(t, name, doc)
		os.WriteFile(filepath.Join(msgDir, name+".eml"), msg, 0o644)
		out, log, code := proxyRewrite(t, config, "inbound", msg)
		if code != 0 {
			t.Fatalf("%s: proxy rewrite exit %d: %s", name, code, log)
		}
		checkNoAddress(t, name+": the log", log)
		files := attachmentsOf(t, out, outDir)
		if len(files) != 1 {
			t.Fatalf("%s: %d attachments after the rewrite", name, len(files))
		}
		for label, view := range readerViews(t, files[0]) {
			checkNoAddress(t, name+" read by "+label, view)
			if !strings.Contains(view, "@relay.company.example") && label != "unzip" {
				t.Errorf("%s read by %s shows no token:\n%.1000s", name, label, view)
			}
		}
		rewritten = append(rewritten, files[0])
		if name == "letter.docx" || name == "contacts.xlsx" {
			back, log, code := proxyRewrite(t, config, "outbound", out)
			if code != 0 {
				t.Fatalf("%s outbound: exit %d: %s", name, code, log)
			}
			restored := attachmentsOf(t, back, t.TempDir())
			if v := readerViews(t, restored[0])["python"]; !strings.Contains(v, "jane.doe@example.com") {
				t.Errorf("%s: outbound did not restore the document:\n%s", name, v)
			}
		}
	}
	for name, text := range libreOfficeText(t, originals(dir, rewritten)) {
		if !strings.Contains(text, "jane.doe@example.com") {
			t.Fatalf("control: LibreOffice shows no address in the original %s:\n%.1000s", name, text)
		}
	}
	for name, text := range libreOfficeText(t, rewritten) {
		checkNoAddress(t, name+" converted by LibreOffice", text)
		if !strings.Contains(text, "@relay.company.example") {
			t.Errorf("%s converted by LibreOffice shows no token:\n%.1000s", name, text)
		}
	}
}

// originals are the corpus documents the rewritten files were made from.
func originals(dir string, rewritten []string) []string {
	var out []string
	for _, f := range rewritten {
		out = append(out, filepath.Join(dir, filepath.Base(f)))
	}
	return out
}

// TestAttachmentCorpusInboundRoute sends the corpus through the inbound
// route (swaks as the customer's MTA, smtp-sink as the CRM): the CRM gets
// every document, readable and without an address; a zip bomb and a
// refused kind get their SMTP replies and leave nothing at the CRM.
func TestAttachmentCorpusInboundRoute(t *testing.T) {
	dir := attachmentCorpus(t)
	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), "127.0.0.1:9", "info", "client_networks: [127.0.0.0/8]")
	appendConfig(t, sv.config, "rewrite: {attachments: {unreadable: refuse, limits: {max_ratio: 50}}}\n")
	p := startServe(t, sv.config, sv.admin)
	names := corpusFiles(t, dir)
	send := func(name string, msg []byte) (int, string) {
		path := filepath.Join(t.TempDir(), "msg.eml")
		os.WriteFile(path, msg, 0o644)
		return swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
			"--from", "jane.doe@example.com", "--to", "support@company.example", "--data", "@"+path)
	}
	for _, name := range names {
		doc, _ := os.ReadFile(filepath.Join(dir, name))
		if code, out := send(name, attachmentMessage(t, name, doc)); code != 0 {
			t.Fatalf("%s: swaks exit %d\n%s\nproxy log:\n%s", name, code, out, p.log.String())
		}
	}
	// Refusals: a zip bomb (552 5.3.4), unknown binary under
	// unreadable: refuse (554 5.6.0).
	bomb := zipBomb(t)
	if code, out := send("bomb.zip", attachmentMessage(t, "bomb.zip", bomb)); code == 0 || !strings.Contains(out, "552 5.3.4") {
		t.Fatalf("zip bomb: exit %d\n%s", code, out)
	}
	if code, out := send("blob.bin", attachmentMessage(t, "blob.bin", []byte("\x00\x01\x02\x03jane.doe@example.com"))); code == 0 || !strings.Contains(out, "554 5.6.0") {
		t.Fatalf("unknown binary under unreadable: refuse: exit %d\n%s", code, out)
	}
	msgs := waitSink(t, crmDir, len(names))
	if len(msgs) != len(names) {
		t.Fatalf("the CRM got %d messages, want %d (a refused one must leave nothing)", len(msgs), len(names))
	}
	outDir := t.TempDir()
	for _, m := range msgs {
		i := strings.Index(m, "\n\n") // smtp-sink's envelope lines, then the message
		if j := strings.Index(m, "Received:"); j >= 0 && (i < 0 || j < i) {
			i = j - 1
		}
		files := attachmentsOf(t, []byte(m[i+1:]), outDir)
		if len(files) != 1 {
			t.Fatalf("a CRM message with %d attachments", len(files))
		}
		for label, view := range readerViews(t, files[0]) {
			checkNoAddress(t, filepath.Base(files[0])+" at the CRM, read by "+label, view)
		}
	}
	checkNoAddress(t, "the proxy log", p.log.String())
}

// zipBomb is a zip whose one member expands a thousandfold.
func zipBomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	cmd := exec.Command("/usr/bin/python3", "-c", `
import io, sys, zipfile
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("zeros.txt", b"0" * (32 << 20))
sys.stdout.buffer.write(b.getvalue())`)
	cmd.Stdout = &buf
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAttachmentStripQuarantine: under office: strip, `proxy rewrite`
// replaces the document with a notice and keeps the original in
// <data_dir>/quarantine, sealed: no address or file name in plaintext.
func TestAttachmentStripQuarantine(t *testing.T) {
	dir := attachmentCorpus(t)
	config := corpusConfig(t)
	cfg, _ := os.ReadFile(config)
	os.WriteFile(config, append(cfg, []byte("rewrite: {attachments: {office: strip}}\n")...), 0o600)
	doc, _ := os.ReadFile(filepath.Join(dir, "letter.docx"))
	out, log, code := proxyRewrite(t, config, "inbound", attachmentMessage(t, "letter.docx", doc))
	if code != 0 {
		t.Fatalf("proxy rewrite: exit %d: %s", code, log)
	}
	files := attachmentsOf(t, out, t.TempDir())
	notice, _ := os.ReadFile(files[0])
	m := regexp.MustCompile(`Reference: (att-[a-z2-7]{16})`).FindSubmatch(notice)
	if m == nil || !strings.Contains(log, string(m[1])) {
		t.Fatalf("notice without a reference the log names:\n%s\nlog: %s", notice, log)
	}
	dataDir := filepath.Join(filepath.Dir(config), "data")
	sealed, err := os.ReadFile(filepath.Join(dataDir, "quarantine", string(m[1])+".q"))
	if err != nil {
		t.Fatalf("the original is not in the quarantine: %v", err)
	}
	if len(sealed) < len(doc) {
		t.Fatalf("the quarantined file (%d bytes) cannot hold the %d-byte original", len(sealed), len(doc))
	}
	for _, plain := range append(corpusAddresses, "letter.docx", "word/document.xml") {
		if bytes.Contains(sealed, []byte(plain)) {
			t.Fatalf("the quarantine file holds %q in plaintext", plain)
		}
	}
}

// TestQuarantineEndToEnd drives the real binary: under office: strip the
// CRM gets a notice for a customer's docx, the inbound route keeps the
// original, and an officer lists, exports (with a reason) and deletes it
// with `proxy compliance` over the HTTPS API; an auditor finds each act in
// the trail.
func TestQuarantineEndToEnd(t *testing.T) {
	dir := attachmentCorpus(t)
	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), "127.0.0.1:9", "info", "client_networks: [127.0.0.0/8]")
	appendConfig(t, sv.config, "rewrite: {attachments: {office: strip}}\n"+complianceConfig("", "alice:officer", "sam:auditor"))
	p := startServe(t, sv.config, sv.admin)
	doc, _ := os.ReadFile(filepath.Join(dir, "letter.docx"))
	msg := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(msg, attachmentMessage(t, "letter.docx", doc), 0o644)
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "support@company.example", "--data", "@"+msg); code != 0 {
		t.Fatalf("swaks: exit %d\n%s\n%s", code, out, p.log.String())
	}
	crm := waitSink(t, crmDir, 1)[0]
	m := regexp.MustCompile(`Reference: (att-[a-z2-7]{16})`).FindStringSubmatch(crm)
	if m == nil {
		t.Fatalf("no reference in the notice:\n%s", crm)
	}
	waitLog(t, p.log, m[1]) // the route logs after its reply
	ref := m[1]
	cli := func(token string, args ...string) (int, string) { return proxyCLI(t, sv.config, token, args...) }
	if code, out := cli("alice-token", "compliance", "quarantine"); code != 0 || !strings.Contains(out, ref) || !strings.Contains(out, "letter.docx") {
		t.Fatalf("quarantine list: exit %d %s", code, out)
	}
	if code, out := cli("sam-token", "compliance", "quarantine-export", ref, "--reason", "curious"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("an auditor exports: exit %d %s", code, out)
	}
	code, out := cli("alice-token", "compliance", "quarantine-export", ref, "--reason", "ticket 4711: customer asks for the document")
	var exported struct{ Content []byte }
	if code != 0 || json.Unmarshal([]byte(out), &exported) != nil || !bytes.Equal(exported.Content, doc) {
		t.Fatalf("quarantine export: exit %d %.300s", code, out)
	}
	if code, out := cli("alice-token", "compliance", "quarantine-delete", ref, "--reason", "ticket 4711 closed"); code != 0 {
		t.Fatalf("quarantine delete: exit %d %s", code, out)
	}
	if code, out := cli("alice-token", "compliance", "quarantine-export", ref, "--reason", "again"); code != 1 || !strings.Contains(out, "404") {
		t.Fatalf("export after delete: exit %d %s", code, out)
	}
	if code, out := cli("sam-token", "compliance", "audit", "--event", "quarantine.export,quarantine.delete"); code != 0 ||
		!strings.Contains(out, `"event":"quarantine.export","actor":"principal:alice"`) || !strings.Contains(out, `"event":"quarantine.delete"`) {
		t.Fatalf("compliance audit: exit %d %s", code, out)
	}
	checkNoAddress(t, "the proxy log", p.log.String())
}
