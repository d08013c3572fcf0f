package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/test/tools"
)

// handedOut holds the ports freePort has returned in this test binary:
// the kernel may give a just-closed ephemeral port again, and two
// listeners of one proxy on the same port make it refuse its config.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback port that was free a moment ago and that
// no earlier call returned.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// startSink runs Postfix's smtp-sink on a loopback port, dumping each
// message with its envelope into a new directory it returns. As root,
// smtp-sink runs as nobody, so the directory sits in /tmp (t.TempDir's
// parents are 0700) and is world-writable.
func startSink(t *testing.T) (int, string) {
	t.Helper()
	return startSinkArgs(t)
}

// startSinkArgs is startSink with smtp-sink options (-8: no 8BITMIME).
func startSinkArgs(t *testing.T, opts ...string) (int, string) {
	t.Helper()
	bin := tools.Path(t, "smtp-sink")
	dir, err := os.MkdirTemp("", "tokenproxy-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	port := freePort(t)
	args := append(opts, "-d", filepath.Join(dir, "%M."), fmt.Sprintf("127.0.0.1:%d", port), "50")
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port, func() string { return errb.String() })
	return port, dir
}

func waitPort(t *testing.T, port int, diag func() string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %d: %s", port, diag())
}

// sinkMessages reads every message smtp-sink dumped into dir.
func sinkMessages(t *testing.T, dir string) []string {
	t.Helper()
	var msgs []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			msgs = append(msgs, string(b))
		}
		return nil
	})
	return msgs
}

// served is a written `proxy serve` configuration and its loopback ports.
type served struct {
	config, dataDir, admin string
	inPort, outPort        int
}

// writeServeConfig writes the configuration the serve tests share: the
// quickstart's domains and mailbox, both routes and the admin listener on
// free loopback ports, downstreams crm and smarthost (plain, loopback), the
// outbound access lines given, the SPF/DKIM/DMARC check off (no DNS here;
// mail authentication has its own tests) and the new-token rate out of the
// way (the smtp package tests it).
func writeServeConfig(t *testing.T, crm, smarthost, logLevel, outboundAccess string) served {
	t.Helper()
	dir := t.TempDir()
	sv := served{config: filepath.Join(dir, "proxy.yaml"), dataDir: filepath.Join(dir, "data"),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)), inPort: freePort(t), outPort: freePort(t)}
	yaml := fmt.Sprintf(`data_dir: %s
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
log: {format: json, level: %s}
inbound:
  listen: 127.0.0.1:%d
  hostname: mx.company.example
  auth_check: {enabled: false}
  downstream: {address: "%s", tls: insecure}
  # The load tests stream thousands of new senders a minute from one IP.
  new_token_rate: {per_ip: 1000000, total: 1000000}
outbound:
  listen: 127.0.0.1:%d
  hostname: relay.company.example
  %s
  allowed_domains: [company.example]
  downstream: {address: "%s", tls: insecure}
admin: {listen: "%s"}
`, sv.dataDir, logLevel, sv.inPort, crm, sv.outPort, outboundAccess, smarthost, sv.admin)
	if err := os.WriteFile(sv.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return sv
}

// proxyProc is a running `proxy serve`.
type proxyProc struct {
	cmd   *exec.Cmd
	log   *logbuf.Buffer
	admin string
	done  chan error
}

func startServe(t *testing.T, config, admin string) *proxyProc {
	t.Helper()
	p := &proxyProc{log: &logbuf.Buffer{}, admin: admin, done: make(chan error, 1)}
	p.cmd = exec.Command(proxyBinary(t), "--config", config, "serve")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	p.cmd.Stderr, p.cmd.Stdout = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	// The admin listener serves HTTPS when the compliance API is on.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, scheme := range []string{"http://", "https://"} {
			if code, _ := httpGet(scheme + admin + "/readyz"); code == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("proxy serve never became ready:\n%s", p.log.String())
	return nil
}

func httpGet(url string) (int, string) {
	// A probe: the self-signed admin certificate is not verified here (the
	// compliance CLI pins it).
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// swaks runs swaks and returns its exit code and transcript.
func swaks(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(tools.Path(t, "swaks"), append([]string{"--timeout", "10"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestServeRoundTripWithSwaksAndSmtpSink drives the real binary as an
// operator deploys it: swaks as the customer's MTA and as the CRM, Postfix's
// smtp-sink as the CRM intake and as the smarthost.
func TestServeRoundTripWithSwaksAndSmtpSink(t *testing.T) {
	crmPort, crmDir := startSink(t)
	smartPort, smartDir := startSink(t)
	hash := runProxyStdin(t, "correct horse battery", "hash-password")
	sv := writeServeConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), fmt.Sprintf("127.0.0.1:%d", smartPort), "debug",
		`auth_users: [{name: crm, password_hash: "`+hash+`"}]
  client_networks: [10.99.0.0/16]`)
	inPort, outPort, adminAddr := sv.inPort, sv.outPort, sv.admin
	p := startServe(t, sv.config, adminAddr)

	if code, body := httpGet("http://" + adminAddr + "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz: %d %s", code, body)
	}

	// The customer's MTA, with STARTTLS.
	code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", inPort), "--tls", "--ehlo", "mail.example.com",
		"--from", "jane.doe@example.com", "--to", "support@company.example",
		"--header", "From: Jane Doe <jane.doe@example.com>", "--header", "Subject: order 1234",
		"--header", "Message-Id: <order-1234@mail.example.com>",
		"--body", "Please write to jane.doe@example.com or my colleague bob.roe@example.org.")
	if code != 0 || !strings.Contains(out, "<~  250") {
		t.Fatalf("swaks inbound: exit %d\n%s\nproxy log:\n%s", code, out, p.log.String())
	}
	crm := waitSink(t, crmDir, 1)[0]
	if strings.Contains(crm, "jane.doe@example.com") || strings.Contains(crm, "bob.roe@example.org") {
		t.Fatalf("the CRM received a customer address:\n%s", crm)
	}
	tok := regexp.MustCompile(`X-Mail-Args: <(t1-[a-z2-7]+@relay\.company\.example)>`).FindStringSubmatch(crm)
	if tok == nil || !strings.Contains(crm, "X-Rcpt-Args: <support@crm.example>") ||
		!strings.Contains(crm, "Message-Id: <order-1234@mail.example.com>") {
		t.Fatalf("CRM message:\n%s", crm)
	}

	// Open relay attempt and MAIL before STARTTLS on the outbound route.
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", inPort), "--from", "x@example.net", "--to", "victim@example.org"); code == 0 || !strings.Contains(out, "550 5.7.1") {
		t.Fatalf("open relay attempt: exit %d\n%s", code, out)
	}
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", outPort), "--from", "support@crm.example", "--to", tok[1]); code == 0 || !strings.Contains(out, "530 5.7.0") {
		t.Fatalf("outbound without TLS: exit %d\n%s", code, out)
	}
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", outPort), "--tls", "--from", "support@crm.example", "--to", tok[1]); code == 0 || !strings.Contains(out, "530 5.7.0 Authentication required") {
		t.Fatalf("outbound without AUTH: exit %d\n%s", code, out)
	}

	// The CRM's reply, with STARTTLS and AUTH LOGIN.
	code, out = swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", outPort), "--tls", "--auth", "LOGIN",
		"--auth-user", "crm", "--auth-password", "correct horse battery", "--ehlo", "crm.example",
		"--from", "support@crm.example", "--to", strings.ToUpper(tok[1]),
		"--header", "From: Acme Support <support@crm.example>", "--header", "To: "+tok[1],
		"--header", "In-Reply-To: <order-1234@mail.example.com>", "--header", "Subject: Re: order 1234",
		"--body", "> "+tok[1]+" wrote: hello")
	if code != 0 || !strings.Contains(out, "235 2.0.0") {
		t.Fatalf("swaks outbound: exit %d\n%s", code, out)
	}
	smart := waitSink(t, smartDir, 1)[0]
	for _, want := range []string{"X-Rcpt-Args: <jane.doe@example.com>", "X-Mail-Args: <support@company.example>",
		"To: Jane Doe <jane.doe@example.com>", "> jane.doe@example.com wrote", "In-Reply-To: <order-1234@mail.example.com>",
		"From: Acme Support <support@company.example>"} {
		if !strings.Contains(smart, want) {
			t.Errorf("smarthost message lacks %q:\n%s", want, smart)
		}
	}

	// An unknown token is refused.
	if code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", outPort), "--tls", "--auth", "PLAIN",
		"--auth-user", "crm", "--auth-password", "correct horse battery",
		"--from", "support@crm.example", "--to", "t1-aaaaaaaaaaaaaaaa@relay.company.example"); code == 0 || !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("unknown token: exit %d\n%s", code, out)
	}

	_, metrics := httpGet("http://" + adminAddr + "/metrics")
	for _, want := range []string{`tokenproxy_messages_total{result="relayed",route="inbound"} 1`,
		`tokenproxy_messages_total{result="relayed",route="outbound"} 1`, `tokenproxy_tls_handshakes_total{route="inbound",version="1.3"}`,
		"tokenproxy_known_cache_hits_total ", "tokenproxy_known_cache_misses_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// SIGHUP reloads the certificates, and the proxy keeps serving.
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.log.String(), `"event":"reload"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload event after SIGHUP:\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := httpGet("http://" + adminAddr + "/readyz"); code != 200 {
		t.Fatalf("/readyz after SIGHUP: %d", code)
	}

	// SIGTERM: a clean stop.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, p.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	logs := p.log.String()
	if !strings.Contains(logs, `"event":"stop"`) {
		t.Errorf("no stop event in the log:\n%s", logs)
	}
	for _, c := range []string{"jane.doe@example.com", "bob.roe@example.org"} {
		if strings.Contains(logs, c) {
			t.Errorf("the log names %s:\n%s", c, logs)
		}
	}
}

func waitSink(t *testing.T, dir string, n int) []string {
	t.Helper()
	for i := 0; i < 100; i++ {
		if m := sinkMessages(t, dir); len(m) >= n {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("smtp-sink in %s got fewer than %d messages", dir, n)
	return nil
}

// runProxyStdin runs a proxy command with stdin and returns its stdout.
func runProxyStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(proxyBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("proxy %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}
