package tools

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestSwaksVersion(t *testing.T) {
	swaks := Path(t, "swaks")
	out, err := exec.Command(swaks, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", swaks, err, out)
	}
	if !strings.Contains(strings.ToLower(string(out)), "swaks") {
		t.Fatalf("%s --version printed %q, want a swaks version line", swaks, out)
	}
}

func TestPostfixToolsPresent(t *testing.T) {
	for _, name := range []string{"smtp-sink", "smtp-source", "postfix", "postconf"} {
		p := Path(t, name)
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("Path(%q) = %q, not an executable file (%v)", name, p, err)
		}
	}
}

// TestSwaksToSmtpSink checks that the two tools work together on loopback:
// swaks delivers one message to smtp-sink and sees 250.
func TestSwaksToSmtpSink(t *testing.T) {
	swaks, sink := Path(t, "swaks"), Path(t, "smtp-sink")
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	args := []string{addr, "16"}
	if os.Geteuid() == 0 {
		// smtp-sink refuses to run as root without a user to switch to.
		args = append([]string{"-u", "nobody"}, args...)
	}
	sinkCmd := exec.CommandContext(ctx, sink, args...)
	var sinkOut strings.Builder
	sinkCmd.Stdout, sinkCmd.Stderr = &sinkOut, &sinkOut
	if err := sinkCmd.Start(); err != nil {
		t.Fatalf("start smtp-sink: %v", err)
	}
	defer func() {
		sinkCmd.Process.Kill()
		sinkCmd.Wait()
	}()
	waitListening(t, addr, 10*time.Second)

	out, err := exec.CommandContext(ctx, swaks,
		"--server", addr, "--from", "sender@example.net", "--to", "rcpt@example.org",
		"--helo", "tools.test", "--timeout", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s\nsmtp-sink: %s", err, out, sinkOut.String())
	}
	if reply := replyToDot(string(out)); !strings.HasPrefix(reply, "250 ") {
		t.Fatalf("reply to the end of DATA = %q, want 250:\n%s", reply, out)
	}
}

// replyToDot returns the server reply that follows the final "." in a swaks
// transcript ("<-  250 2.0.0 Ok" gives "250 2.0.0 Ok"), or "".
func replyToDot(transcript string) string {
	sawDot := false
	for line := range strings.Lines(transcript) {
		line = strings.TrimSpace(line)
		switch {
		case line == "-> .":
			sawDot = true
		case sawDot && strings.HasPrefix(line, "<-"):
			return strings.TrimSpace(strings.TrimPrefix(line, "<-"))
		}
	}
	return ""
}

// freeAddr returns a loopback address with a port that was free a moment ago
// (smtp-sink cannot report the port it picked for :0).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func waitListening(t *testing.T, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s after %v: %v", addr, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPromtoolVersion(t *testing.T) {
	promtool := Path(t, "promtool")
	out, err := exec.Command(promtool, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "promtool") {
		t.Fatalf("%s --version: %v\n%s", promtool, err, out)
	}
}
