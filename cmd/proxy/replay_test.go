package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
)

// eraseOffline erases a token as the compliance service does: the
// compliance.erase record first, then the map.
func (c *cli) eraseOffline(tok string) {
	c.t.Helper()
	ctx := audit.WithActor(context.Background(), "officer:test")
	a := &app{dataDir: c.dataDir, stdout: io.Discard, stderr: io.Discard}
	err := a.withEngine(ctx, func(_ *policy.Config, e *engine) error {
		if _, err := e.trail.Append(ctx, audit.Record{Event: audit.ComplianceErase, Reason: "test", Tokens: []string{tok}, Count: 1, Outcome: "ok"}); err != nil {
			return err
		}
		return e.m.Erase(ctx, tok)
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// TestRestoreReplaysErasures: a bbolt backup taken before an erasure
// brings the erased token back when restored alone (--no-replay: the
// problem Invariant 7 names); `proxy restore` replays the trail's
// erasures itself, and `proxy store replay-erasures` does after a
// --no-replay restore. Both are audited.
func TestRestoreReplaysErasures(t *testing.T) {
	c := newCLI(t)
	erased := strings.TrimSpace(c.mustRun("token", "new", "jane.doe@example.org"))
	kept := strings.TrimSpace(c.mustRun("token", "new", "customer@example.com"))
	backup := filepath.Join(t.TempDir(), "b.db")
	c.mustRun("backup", backup)
	c.eraseOffline(erased)
	resolves := func(tok string) bool {
		code, _, _ := c.run("token", "resolve", "--reason", "replay test", tok)
		return code == 0
	}
	if resolves(erased) {
		t.Fatal("the erased token resolves before any restore")
	}

	out := c.mustRun("restore", "--no-replay", backup)
	if !strings.Contains(out, "replay-erasures") || !resolves(erased) {
		t.Fatalf("restore --no-replay: the erased token should be back, with the hint printed:\n%s", out)
	}
	out = c.mustRun("store", "replay-erasures")
	if !strings.Contains(out, "1 erased again") || !strings.Contains(out, "erased again: "+erased) {
		t.Fatalf("replay-erasures:\n%s", out)
	}
	if resolves(erased) || !resolves(kept) {
		t.Fatalf("after the replay: erased resolves %t, kept resolves %t", resolves(erased), resolves(kept))
	}
	if out := c.mustRun("store", "replay-erasures"); !strings.Contains(out, "0 erased again, 1 already erased") {
		t.Fatalf("a second replay:\n%s", out)
	}

	out = c.mustRun("restore", backup)
	if !strings.Contains(out, "erased again: "+erased) || resolves(erased) || !resolves(kept) {
		t.Fatalf("restore (with its replay):\n%s", out)
	}
	trail := c.mustRun("audit", "export", "--event", audit.ErasuresReplayed)
	if n := strings.Count(trail, "\n"); n != 3 || !strings.Contains(trail, `"count":1`) {
		t.Fatalf("want 3 replay records, two naming the token:\n%s", trail)
	}
	if out := c.mustRun("audit", "verify"); !strings.Contains(out, "result:           OK") {
		t.Fatalf("audit verify:\n%s", out)
	}
}
