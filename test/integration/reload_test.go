package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lineClient speaks SMTP line by line, so a session can be left in the
// middle of a transaction.
type lineClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLine(t *testing.T, port int) *lineClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &lineClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220")
	return c
}

func (c *lineClient) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads one (multi-line) reply and checks its start.
func (c *lineClient) expect(prefix string) string {
	c.t.Helper()
	var all []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, all)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	r := strings.Join(all, "\n")
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want %s…", r, prefix)
	}
	return r
}

func (c *lineClient) must(prefix, cmd string) string {
	c.t.Helper()
	c.write(cmd + "\r\n")
	return c.expect(prefix)
}

// hup sends SIGHUP and waits for the n-th log line with one of events.
func (p *proxyProc) hup(t *testing.T, n int, events ...string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := 0
		for _, e := range events {
			seen += strings.Count(p.log.String(), `"event":"`+e+`"`)
		}
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q event after SIGHUP:\n%s", events, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMetric waits until the admin listener's /metrics holds want.
func waitMetric(t *testing.T, admin, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics := httpGet("http://" + admin + "/metrics")
		if strings.Contains(metrics, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics on %s lacks %s", admin, want)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rewriteConfig replaces old by new in the configuration file.
func rewriteConfig(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeReloadOnSIGHUP drives the real binary: sessions left in the
// middle of a transaction across a SIGHUP finish with 250 under the
// configuration they started with and reach the CRM; a new session sees
// the new mailbox and limit; an invalid file leaves the proxy serving on
// the previous configuration and is logged by field path; a field that
// needs a restart is kept with a warning. No customer address is logged.
func TestServeReloadOnSIGHUP(t *testing.T) {
	crmPort, crmDir := startSink(t)
	smartPort, _ := startSink(t)
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "info",
		"client_networks: [127.0.0.0/8]")
	p := startServe(t, sv.config, sv.admin)

	// Two sessions under way: one after RCPT, one in the middle of DATA.
	afterRcpt := dialLine(t, sv.inPort)
	afterRcpt.must("250", "EHLO mail.example.com")
	afterRcpt.must("250", "MAIL FROM:<jane.doe@example.com>")
	afterRcpt.must("250", "RCPT TO:<support@company.example>")
	midData := dialLine(t, sv.inPort)
	midData.must("250", "EHLO mail.example.com")
	midData.must("250", "MAIL FROM:<jane.doe@example.com>")
	midData.must("250", "RCPT TO:<support@company.example>")
	midData.must("354", "DATA")
	midData.write("From: Jane Doe <jane.doe@example.com>\r\nSubject: before the reload\r\n\r\nfirst half\r\n")

	// A mailbox added, a limit changed.
	const oneMailbox = "mailboxes: [{public: support@company.example, crm: support@crm.example}]"
	rewriteConfig(t, sv.config, oneMailbox,
		"mailboxes: [{public: support@company.example, crm: support@crm.example}, {public: sales@company.example, crm: sales@crm.example}]\n"+
			"smtp: {max_message_bytes: 2097152}")
	p.hup(t, 1, "reload", "reload_invalid", "reload_failed")
	if !strings.Contains(p.log.String(), `"changed":["mailboxes","smtp.max_message_bytes"]`) {
		t.Fatalf("the reload line does not list the changed paths:\n%s", p.log.String())
	}

	afterRcpt.must("550 5.7.1", "RCPT TO:<sales@company.example>")
	afterRcpt.must("354", "DATA")
	afterRcpt.write("From: Jane Doe <jane.doe@example.com>\r\nSubject: after RCPT\r\n\r\nhello\r\n.\r\n")
	afterRcpt.expect("250")
	midData.write("second half\r\n.\r\n")
	midData.expect("250")
	msgs := waitSink(t, crmDir, 2)
	for _, m := range msgs {
		if !strings.Contains(m, "X-Rcpt-Args: <support@crm.example>") || strings.Contains(m, "jane.doe@example.com") {
			t.Errorf("message of a session under way at the CRM:\n%s", m)
		}
	}

	// A new session sees the new configuration.
	fresh := dialLine(t, sv.inPort)
	if ehlo := fresh.must("250", "EHLO mail.example.com"); !strings.Contains(ehlo, "SIZE 2097152") {
		t.Errorf("EHLO after the reload:\n%s", ehlo)
	}
	fresh.must("221", "QUIT")
	code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "sales@company.example", "--header", "Subject: to sales")
	if code != 0 {
		t.Fatalf("new session to the added mailbox: exit %d\n%s", code, out)
	}
	if m := waitSink(t, crmDir, 3); !strings.Contains(strings.Join(m, "\n"), "X-Rcpt-Args: <sales@crm.example>") {
		t.Fatalf("the added mailbox got nothing:\n%s", strings.Join(m, "\n---\n"))
	}

	// An invalid file: the proxy keeps serving on the previous one.
	rewriteConfig(t, sv.config, "smtp: {max_message_bytes: 2097152}", "smtp: {max_message_bytes: 2097152, refusal_code: 600}")
	p.hup(t, 1, "reload_invalid")
	if !strings.Contains(p.log.String(), `"field":"smtp.refusal_code"`) {
		t.Fatalf("the refusal does not name the field:\n%s", p.log.String())
	}
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "sales@company.example", "--header", "Subject: still served"); code != 0 {
		t.Fatalf("after an invalid reload: exit %d\n%s", code, out)
	}
	if code, _ := httpGet("http://" + sv.admin + "/readyz"); code != 200 {
		t.Fatalf("/readyz after an invalid reload: %d", code)
	}

	// A field that needs a restart keeps its running value.
	rewriteConfig(t, sv.config, "refusal_code: 600", "refusal_code: 451")
	rewriteConfig(t, sv.config, sv.admin, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	p.hup(t, 2, "reload")
	if !strings.Contains(p.log.String(), `"event":"reload_needs_restart","fields":["admin.listen"]`) {
		t.Fatalf("no restart warning for admin.listen:\n%s", p.log.String())
	}
	// A reload is counted once its certificates are read too, just after
	// its log line.
	waitMetric(t, sv.admin, `tokenproxy_config_reloads_total{result="ok"} 2`)
	waitMetric(t, sv.admin, `tokenproxy_config_reloads_total{result="error"} 1`)

	afterRcpt.must("221", "QUIT")
	midData.must("221", "QUIT")
	if logs := p.log.String(); strings.Contains(logs, "jane.doe@example.com") {
		t.Errorf("the log names a customer:\n%s", logs)
	}
}
