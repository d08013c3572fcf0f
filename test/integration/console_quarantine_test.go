package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tokenproxy/tokenproxy/test/attachcorpus"
)

// consoleStrip is the console test's attachment policy: office documents
// are stripped into the quarantine (issue 17 item 5).
const consoleStrip = "rewrite: {attachments: {office: strip}}\n"

// quarantineSender is the customer whose document the quarantine keeps:
// not one the console test erases.
const quarantineSender = "carol@example.net"

// letterDocx is the attachment corpus's letter (python-docx; it names the
// customers in its body, a split run, a hyperlink, its properties and
// header), made without the rest of the corpus (no LibreOffice run).
func letterDocx(t *testing.T) []byte {
	t.Helper()
	attachcorpus.Install(t)
	path := filepath.Join(t.TempDir(), "letter.docx")
	cmd := exec.Command("/usr/bin/python3", filepath.Join(attachcorpus.Dir(), "make_documents.py"), "--large", "0", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_documents.py: %v\n%s", err, out)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var quarantineRefRE = regexp.MustCompile(`Reference: (att-[a-z2-7]{16})`)

// stripThroughInbound sends a customer message carrying the letter through
// the inbound route (the CRM sink's nth message) and returns the
// reference of the original the quarantine kept.
func stripThroughInbound(t *testing.T, sv served, crmDir string, doc []byte, n int) string {
	t.Helper()
	msg := attachmentMessage(t, "letter.docx", doc)
	msg = bytes.Replace(msg, []byte("From: Jane Doe <jane.doe@example.com>"), []byte("From: Carol <"+quarantineSender+">"), 1)
	file := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(file, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--tls", "--ehlo", "mail.example.com",
		"--from", quarantineSender, "--to", "support@company.example", "--data", "@"+file); code != 0 {
		t.Fatalf("inbound with the letter: exit %d\n%s", code, out)
	}
	for _, m := range waitSink(t, crmDir, n) {
		if r := quarantineRefRE.FindStringSubmatch(m); r != nil {
			if strings.Contains(m, "word/document.xml") || strings.Contains(m, quarantineSender) {
				t.Fatalf("the CRM got the document or the sender's address:\n%.2000s", m)
			}
			return r[1]
		}
	}
	t.Fatal("no message at the CRM carries a quarantine notice")
	return ""
}

// consoleQuarantine is TestConsoleBrowser's quarantine part: a docx sent
// through the inbound route under office: strip is kept; the auditor is
// refused the Quarantine page (403, audited); the officer finds it in the
// list, exports it (reason; the download is the original, byte for byte)
// and, with JavaScript off, deletes it (typed reference, reason); each
// result shows its audit record.
func consoleQuarantine(t *testing.T, b *consoleBrowser, sv served, crmDir, downloads string, seen map[string]bool, n int) {
	doc := letterDocx(t)
	ref := stripThroughInbound(t, sv, crmDir, doc, n)
	kept := filepath.Join(sv.dataDir, "quarantine", ref+".q")
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the original is not kept: %v", err)
	}

	b.signIn("sam-token")
	if code := b.open("/console/quarantine"); code != 403 {
		t.Fatalf("auditor opens Quarantine: %d, want 403", code)
	}
	b.mustSee("403 page", "needs the officer role", "recorded in the audit trail")
	b.signOut()

	b.signIn("alice-token")
	if code := b.click(`nav a[href="/console/quarantine"]`); code != 200 {
		t.Fatalf("Quarantine from the nav: %d", code)
	}
	h := b.mustSee("list", ref, "letter.docx", "office", "quarantine.list")
	if strings.Contains(h, quarantineSender) {
		t.Error("the list shows the sender's address")
	}
	b.shot("quarantine")

	b.typeIn("#export-reason", "ticket 4713: customer asks for the document")
	if code := b.click(`form[action="/console/quarantine/export"] button`); code != 200 {
		t.Fatalf("export: %d\n%s", code, b.html())
	}
	b.mustSee("export", "Export ready", "quarantine.export", "principal:alice", ref)
	b.shot("quarantine-export")
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("#download"))); err != nil {
		t.Fatal(err)
	}
	if got := waitDownload(t, downloads, seen); got != string(doc) {
		t.Errorf("the download (%d bytes) is not the original (%d bytes)", len(got), len(doc))
	}

	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.open("/console/quarantine?ref=" + ref)
	if strings.Contains(b.html(), `class="js"`) {
		t.Fatal("the console's script ran with JavaScript off")
	}
	b.typeIn("#confirm", "att-aaaaaaaaaaaaaaaa")
	b.typeIn("#delete-reason", "ticket 4713 closed")
	if code := b.click(`form[action="/console/quarantine/delete"] button`); code != 400 {
		t.Fatalf("delete with a wrong confirmation: %d, want 400", code)
	}
	b.mustSee("refused delete", "Nothing was deleted", ref)
	b.typeIn("#confirm", ref)
	b.typeIn("#delete-reason", "ticket 4713 closed")
	if code := b.click(`form[action="/console/quarantine/delete"] button`); code != 200 {
		t.Fatalf("delete: %d\n%s", code, b.html())
	}
	b.mustSee("delete", "Attachment deleted", "quarantine.delete", "No attachment is kept")
	b.shot("quarantine-delete-nojs")
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Errorf("the original is still kept after the delete: %v", err)
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}
	b.signOut()

	trail, err := os.ReadFile(filepath.Join(sv.dataDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"event":"quarantine.list","actor":"principal:alice"`,
		`"event":"quarantine.export","actor":"principal:alice"`,
		`"event":"quarantine.delete","actor":"principal:alice"`,
		`"ref":"` + ref + `"`,
	} {
		if !strings.Contains(string(trail), want) {
			t.Errorf("the trail lacks %s", want)
		}
	}
}
