package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// TestPDFStripEndToEnd drives the real binary under the default PDF policy
// (strip): swaks sends a customer's invoice that carries her own address
// (ReportLab, compressed page); the message is relayed, not bounced, and
// smtp-sink (the CRM) gets a notice in the PDF's place with no address
// anywhere; an officer exports the original with `proxy compliance`, byte
// for byte (pdftotext still reads the address in it), and an auditor
// finds the export in the trail, beside the sender's token creation (which
// TestPDFRefuseEndToEnd must not find).
func TestPDFStripEndToEnd(t *testing.T) {
	doc := textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice 1234 for jane.doe@example.com')\nc.save()")
	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), "127.0.0.1:9", "info", "client_networks: [127.0.0.0/8]")
	withCompliance(t, sv.config, "")
	p := startServe(t, sv.config, sv.admin)
	msg := invoiceMessage(t, doc)
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "support@company.example", "--data", "@"+msg); code != 0 {
		t.Fatalf("swaks: exit %d\n%s\n%s", code, out, p.log.String())
	}
	crm := waitSink(t, crmDir, 1)[0]
	checkNoAddress(t, "what the CRM received", crm)
	if strings.Contains(crm, "JVBERi0") { // "%PDF-" in base64
		t.Fatalf("the PDF reached the CRM:\n%s", crm)
	}
	m := regexp.MustCompile(`Reference: (att-[a-z2-7]{16})`).FindStringSubmatch(crm)
	if m == nil || !strings.Contains(crm, "Kind: pdf") {
		t.Fatalf("no notice with a reference:\n%s", crm)
	}
	waitLog(t, p.log, m[1]) // the route logs after its reply
	cli := func(token string, args ...string) (int, string) { return proxyCLI(t, sv.config, token, args...) }
	code, out := cli("alice-token", "compliance", "quarantine-export", m[1], "--reason", "ticket 1234: the customer's invoice")
	var exported struct{ Content []byte }
	if code != 0 || json.Unmarshal([]byte(out), &exported) != nil || !bytes.Equal(exported.Content, doc) {
		t.Fatalf("quarantine export: exit %d %.300s", code, out)
	}
	if !strings.Contains(textforms.PDFText(t, exported.Content), "jane.doe@example.com") {
		t.Fatal("the exported original does not read as the PDF sent")
	}
	// The token's creation reaches the trail through the outbox: waited for.
	for i := 0; ; i++ {
		code, out := cli("sam-token", "compliance", "audit", "--event", "quarantine.export,token.created")
		if code == 0 && strings.Contains(out, `"event":"quarantine.export","actor":"principal:alice"`) && strings.Contains(out, `"event":"token.created"`) {
			break
		}
		if i == 40 {
			t.Fatalf("compliance audit: exit %d %s", code, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	checkNoAddress(t, "the proxy log", p.log.String())
}

// TestPDFRefuseEndToEnd: under pdf: refuse the real binary answers the
// same invoice 554 5.6.0 before queueing it: the CRM gets nothing, the
// quarantine holds nothing, and the trail records no token created (the
// sender's staged token is dropped with the message).
func TestPDFRefuseEndToEnd(t *testing.T) {
	doc := textforms.ReportLabPDF(t, "c = canvas.Canvas(path, pageCompression=1)\nc.drawString(72, 720, 'Invoice 1234 for jane.doe@example.com')\nc.save()")
	crmPort, crmDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), "127.0.0.1:9", "info", "client_networks: [127.0.0.0/8]")
	withCompliance(t, sv.config, "rewrite: {attachments: {pdf: refuse}}\n")
	p := startServe(t, sv.config, sv.admin)
	code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "support@company.example", "--data", "@"+invoiceMessage(t, doc))
	if code == 0 || !strings.Contains(out, "554 5.6.0") || strings.Contains(out, "jane.doe@example.com>\n <~ 554") {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	if m := sinkMessages(t, crmDir); len(m) != 0 {
		t.Fatalf("the CRM got %d messages", len(m))
	}
	if kept, _ := filepath.Glob(filepath.Join(sv.dataDir, "quarantine", "*")); len(kept) != 0 {
		t.Fatalf("the refused message left %d quarantined files", len(kept))
	}
	if code, out := proxyCLI(t, sv.config, "sam-token", "compliance", "audit", "--event", "token.created"); code != 0 ||
		strings.Contains(out, "token.created") {
		t.Fatalf("compliance audit: exit %d %s", code, out)
	}
	checkNoAddress(t, "the proxy log", p.log.String())
}

// withCompliance appends to a serve configuration the compliance API with
// an officer (alice) and an auditor (sam), and extra.
func withCompliance(t *testing.T, config, extra string) {
	t.Helper()
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	cfg, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = fmt.Appendf(cfg, `%scompliance:
  enabled: true
  principals:
    - {name: alice, roles: [officer], token_sha256: %s}
    - {name: sam, roles: [auditor], token_sha256: %s}
`, extra, hash("alice-token"), hash("sam-token"))
	os.WriteFile(config, cfg, 0o600)
}

// invoiceMessage writes a customer message with the PDF attached and
// returns its file.
func invoiceMessage(t *testing.T, doc []byte) string {
	t.Helper()
	msg := filepath.Join(t.TempDir(), "msg.eml")
	os.WriteFile(msg, []byte("From: Jane Doe <jane.doe@example.com>\r\nTo: support@company.example\r\nSubject: my invoice\r\n"+
		"Message-Id: <invoice-1234@mail.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nThe invoice is attached.\r\n--b\r\nContent-Type: application/pdf\r\n"+
		"Content-Disposition: attachment; filename=invoice.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		textforms.Base64Lines(doc)+"--b--\r\n"), 0o644)
	return msg
}
