package compliance

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// trailRecords returns the records of the engine's trail with event ev.
func trailRecords(t *testing.T, e *testEngine, ev string) []audit.Record {
	t.Helper()
	f, err := os.Open(e.trail.Path())
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
	e := newTestEngine(t, io.Discard)
	ctx := context.Background()
	// A token last used three days ago: made by a map whose clock is behind.
	e.m.Close()
	opts := e.mapOptions()
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

	stop := e.service(e.cfg.Compliance).StartRetention(policy.Retention{TokenMaxIdle: 24 * time.Hour, SweepInterval: time.Hour})
	// The record is committed with the expiry, in the map's outbox, and
	// reaches the trail a moment later: wait for the token to go, then
	// for the outbox (SyncAudit, as every reader of the trail does).
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
	stop()
	if err := e.m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	recs := trailRecords(t, e, audit.TokenExpired)
	if len(recs) != 1 || recs[0].Actor != "system:retention" || len(recs[0].Tokens) != 1 || recs[0].Tokens[0] != oldTok.Address {
		t.Fatalf("expiry records %+v; want one by system:retention for %s", recs, oldTok.Address)
	}
	if _, err := e.m.Inspect(ctx, fresh.Address); err != nil {
		t.Errorf("the recent token was expired: %v", err)
	}
}

// panickyMap is a TokenMap whose first Expire panics; the others count.
type panickyMap struct {
	TokenMap // nil: the sweeper calls nothing else
	calls    atomic.Int32
}

func (m *panickyMap) Expire(context.Context, time.Time, map[string]string) (int, error) {
	if m.calls.Add(1) == 1 {
		panic("corrupt record")
	}
	return 0, nil
}

// lockedBuffer is a log sink safe for the sweeper's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRetentionSweepSurvivesPanic: a panic in one sweep is logged, and
// the sweeper sweeps again at the next tick.
func TestRetentionSweepSurvivesPanic(t *testing.T) {
	m, logs := &panickyMap{}, &lockedBuffer{}
	svc := New(Options{Map: m, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	stop := svc.StartRetention(policy.Retention{TokenMaxIdle: 24 * time.Hour, SweepInterval: 10 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for m.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no sweep after the one that panicked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if !strings.Contains(logs.String(), "retention sweep panicked") || !strings.Contains(logs.String(), "corrupt record") {
		t.Errorf("the panic is not logged:\n%s", logs)
	}
}

// TestReloadAppliesGuardLimit: a reload's compliance.max_resolutions_per_hour
// takes effect at once and the reload is audited.
func TestReloadAppliesGuardLimit(t *testing.T) {
	e := newTestEngine(t, io.Discard)
	svc := e.service(e.cfg.Compliance)
	for i := range 3 {
		if !svc.guard.allow("alice") {
			t.Fatalf("resolution %d refused under the default limit", i+1)
		}
	}
	next := e.cfg.Compliance
	next.MaxResolutionsPerHour = 3
	svc.Reload(context.Background(), next, []string{"compliance.max_resolutions_per_hour"})
	if svc.guard.allow("alice") {
		t.Fatal("a 4th resolution allowed after the limit was reloaded to 3")
	}
	recs := trailRecords(t, e, audit.ConfigReloaded)
	if len(recs) != 1 || recs[0].Actor != "system:sighup" || recs[0].Detail["changed"] != "compliance.max_resolutions_per_hour" {
		t.Fatalf("reload records %+v", recs)
	}
}
