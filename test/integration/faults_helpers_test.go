package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Helpers shared by the fault tests (disk full, corrupt map, Vault killed,
// SMTP attacks) on top of serve_test.go's and crash_test.go's.

// replyOf renders a client call's outcome as the server's reply: "250" for
// success, "451 4.3.0 text" for an SMTP error, or the error itself (a lost
// connection, a timeout).
func replyOf(err error) string {
	if err == nil {
		return "250"
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return "error: " + err.Error()
}

// customerMessage is a message from a customer to the support mailbox
// that names no address but the sender's, with a Message-ID the sink can
// be searched for.
func customerMessage(from, id string) string {
	return fmt.Sprintf("From: %s\r\nTo: support@company.example\r\nMessage-ID: %s\r\nSubject: fault test\r\n\r\nhello from a customer\r\n", from, id)
}

// sendCustomer sends customerMessage over plain SMTP to the inbound route
// and returns the reply ("250", or the refusal).
func sendCustomer(inPort int, from, id string) string {
	return replyOf(sendPlain(fmt.Sprintf("127.0.0.1:%d", inPort), from, customerMessage(from, id)))
}

var tokenRE = regexp.MustCompile(`t1-[a-z2-7]{16}@relay\.company\.example`)

// sinkByID indexes the sink's messages by Message-ID.
func sinkByID(msgs []string) map[string]string {
	idRE := regexp.MustCompile(`(?m)^Message-ID: (<[^>]+>)\r?$`)
	out := map[string]string{}
	for _, m := range msgs {
		if mm := idRE.FindStringSubmatch(m); mm != nil {
			out[mm[1]] = m
		}
	}
	return out
}

// stopServe stops a running proxy with SIGTERM and fails the test unless
// it exits cleanly within 15 s.
func stopServe(t *testing.T, p *proxyProc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for startServe's cleanup
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, p.log.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop within 15 s of SIGTERM:\n%s", p.log.String())
	}
}

// runProxyBounded runs a proxy command that must end by itself (a serve
// that refuses to start): it is killed after limit, and code is then -1.
func runProxyBounded(t *testing.T, limit time.Duration, config string, args ...string) binRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, proxyBinary(t), append([]string{"--config", config}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return binRun{code, out.String(), errb.String()}
}

// resolveOffline resolves a token with `proxy token resolve` (the proxy
// stopped) and returns the address it maps to.
func resolveOffline(t *testing.T, config, token string) string {
	t.Helper()
	r := runProxyBounded(t, 30*time.Second, config, "token", "resolve", "--reason", "integration test", token)
	if r.code != 0 {
		t.Fatalf("token resolve %s: exit %d\n%s%s", token, r.code, r.stdout, r.log)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "address:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("token resolve %s printed no address:\n%s", token, r.stdout)
	return ""
}

// noPanicTrace fails the test if out holds a Go panic or stack trace.
func noPanicTrace(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", ".go:"} {
		if strings.Contains(out, s) {
			t.Errorf("%s holds a panic trace (%q):\n%s", what, s, out)
			return
		}
	}
}
