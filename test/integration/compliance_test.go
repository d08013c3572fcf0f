package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestComplianceErasureEndToEnd drives the real binary: a customer writes
// in, the CRM answers through the outbound route, an officer erases the
// customer with `proxy compliance erase` over the HTTPS API, and from then
// on the outbound route refuses the token (550 5.1.1). An auditor may not
// resolve; the trail verifies; neither the database file, the trail nor
// the log holds the address.
func TestComplianceErasureEndToEnd(t *testing.T) {
	crmPort, crmDir := startSink(t)
	smartPort, smartDir := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "info",
		"client_networks: [127.0.0.0/8]")
	appendConfig(t, sv.config, complianceConfig("", "alice:officer", "sam:auditor"))
	p := startServe(t, sv.config, sv.admin)

	code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--tls", "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "support@company.example",
		"--header", "Subject: please erase me later", "--body", "hello")
	if code != 0 {
		t.Fatalf("inbound: %s\n%s", out, p.log.String())
	}
	tok := regexp.MustCompile(`X-Mail-Args: <(t1-[a-z2-7]+@relay\.company\.example)>`).FindStringSubmatch(waitSink(t, crmDir, 1)[0])
	if tok == nil {
		t.Fatal("no token at the CRM")
	}
	reply := func() (int, string) {
		return swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.outPort), "--tls", "--ehlo", "crm.example",
			"--from", "support@crm.example", "--to", tok[1], "--header", "Message-Id: <reply-1@crm.example>", "--body", "answer")
	}
	if code, out := reply(); code != 0 {
		t.Fatalf("outbound before erasure: %s", out)
	}
	waitSink(t, smartDir, 1)

	cli := func(token string, args ...string) (int, string) { return proxyCLI(t, sv.config, token, args...) }
	if code, out := cli("sam-token", "compliance", "resolve", tok[1], "--reason", "curious"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("auditor resolve: exit %d %s", code, out)
	}
	if code, out := cli("alice-token", "compliance", "erase", "jane.doe@example.com", "--reason", "erasure request 2026-1"); code != 0 || !strings.Contains(out, tok[1]) {
		t.Fatalf("erase: exit %d %s", code, out)
	}
	if code, out := reply(); code == 0 || !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("outbound after erasure: exit %d\n%s", code, out)
	}
	if code, out := cli("sam-token", "compliance", "verify"); code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("compliance verify: exit %d %s", code, out)
	}
	if code, out := cli("sam-token", "compliance", "audit", "--event", "compliance.erase,token.resolved"); code != 0 ||
		!strings.Contains(out, `"event":"compliance.erase","actor":"principal:alice"`) || !strings.Contains(out, `"event":"token.resolved"`) {
		t.Fatalf("compliance audit: exit %d %s", code, out)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if code, out := cli("", "audit", "verify"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify after stop: exit %d %s", code, out)
	}
	db, _ := os.ReadFile(filepath.Join(sv.dataDir, "tokenproxy.db"))
	trail, _ := os.ReadFile(filepath.Join(sv.dataDir, "audit.jsonl"))
	for name, b := range map[string][]byte{"database": db, "audit trail": trail, "log": []byte(p.log.String())} {
		if bytes.Contains(bytes.ToLower(b), []byte("jane.doe")) {
			t.Errorf("the %s holds the erased address", name)
		}
	}
}
