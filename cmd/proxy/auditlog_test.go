package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
)

// newTestEngine opens a real engine (bbolt file, local keyring, audit
// trail) in a temporary data directory.
func newTestEngine(t *testing.T, edit func(*policy.Config)) (*app, *policy.Config, *engine) {
	t.Helper()
	a := &app{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	cfg, err := a.config()
	if err != nil {
		t.Fatal(err)
	}
	a.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	if edit != nil {
		edit(cfg)
	}
	e, err := a.openEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return a, cfg, e
}

// TestAuditSyslogFromConfig: audit.syslog in the configuration forwards
// every record to a syslog server (UDP on loopback here).
func TestAuditSyslogFromConfig(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, _, e := newTestEngine(t, func(c *policy.Config) {
		c.Audit.Syslog = policy.AuditSyslog{Network: "udp", Address: pc.LocalAddr().String(), Tag: "tokenproxy-audit"}
	})
	if _, err := e.m.Tokenize(context.Background(), "syslog.customer@example.com", ""); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no token.created record reached syslog: %v", err)
		}
		msg := string(buf[:n])
		if strings.Contains(msg, "syslog.customer") {
			t.Fatalf("syslog message holds the address: %s", msg)
		}
		if strings.Contains(msg, "tokenproxy-audit") && strings.Contains(msg, `"event":"token.created"`) {
			return
		}
	}
}
