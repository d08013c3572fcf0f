package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
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

// trailRecords returns the records of the engine's trail with event ev.
func trailRecords(t *testing.T, cfg *policy.Config, ev string) []audit.Record {
	t.Helper()
	f, err := os.Open(auditPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	if err := audit.Select(f, audit.Query{Events: []string{ev}}, func(r audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRetentionSweepInServe runs the sweeper as serve starts it: a token
// idle for longer than retention.token_max_idle expires at the first
// sweep, the expiry is audited as system:retention, a recent one stays.
func TestRetentionSweepInServe(t *testing.T) {
	a, cfg, e := newTestEngine(t, func(c *policy.Config) {
		c.Retention.TokenMaxIdle, c.Retention.SweepInterval = 24*time.Hour, time.Hour
	})
	ctx := context.Background()
	// A token last used three days ago: made by a map whose clock is behind.
	e.m.Close()
	opts := mapOptions(cfg, a.log)
	opts.Audit = compliance.Creations{Log: e.trail}
	opts.Now = func() time.Time { return time.Now().Add(-72 * time.Hour) }
	old, err := tokenize.NewMap(e.db, e.keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	oldTok, err := old.Tokenize(ctx, "idle.customer@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	opts.Now = nil
	if e.m, err = tokenize.NewMap(e.db, e.keys, opts); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.m.Tokenize(ctx, "active.customer@example.com", "")
	if err != nil {
		t.Fatal(err)
	}

	rt := startCompliance(a, cfg, e, &adminServer{mux: http.NewServeMux()})
	// The record is written inside the expiry's transaction, before its
	// commit: wait for the token to go, not for the record.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.m.Inspect(ctx, oldTok.Address); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle token still resolves after the first sweep")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rt.close()
	recs := trailRecords(t, cfg, audit.TokenExpired)
	if len(recs) != 1 || recs[0].Actor != "system:retention" || len(recs[0].Tokens) != 1 || recs[0].Tokens[0] != oldTok.Address {
		t.Fatalf("expiry records %+v; want one by system:retention for %s", recs, oldTok.Address)
	}
	if _, err := e.m.Inspect(ctx, fresh.Address); err != nil {
		t.Errorf("the recent token was expired: %v", err)
	}
}

// TestReloadAppliesGuardLimit: a reload's compliance.max_resolutions_per_hour
// takes effect at once and the reload is audited.
func TestReloadAppliesGuardLimit(t *testing.T) {
	a, cfg, e := newTestEngine(t, nil)
	rt := startCompliance(a, cfg, e, &adminServer{mux: http.NewServeMux()})
	defer rt.close()
	for i := range 3 {
		if !rt.svc.guard.allow("alice") {
			t.Fatalf("resolution %d refused under the default limit", i+1)
		}
	}
	next := *cfg
	next.Compliance.MaxResolutionsPerHour = 3
	rt.reloaded(context.Background(), &next, []string{"compliance.max_resolutions_per_hour"})
	if rt.svc.guard.allow("alice") {
		t.Fatal("a 4th resolution allowed after the limit was reloaded to 3")
	}
	recs := trailRecords(t, cfg, audit.ConfigReloaded)
	if len(recs) != 1 || recs[0].Actor != "system:sighup" || recs[0].Detail["changed"] != "compliance.max_resolutions_per_hour" {
		t.Fatalf("reload records %+v", recs)
	}
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
