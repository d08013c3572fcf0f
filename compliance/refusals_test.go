package compliance

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// TestComplianceRefusalsAggregated: 5,000 unauthenticated calls from one
// client write a few aggregate records, not 5,000, and past the limit the
// client gets 429.
func TestComplianceRefusalsAggregated(t *testing.T) {
	h := newComplianceHarness(t, 50)
	before := strings.Count(h.trail(), `"compliance.refused"`)
	codes := map[int]int{}
	for range 5000 {
		code, _ := h.call("nobody", "GET", "/v1/audit/verify", nil)
		codes[code]++
	}
	if codes[http.StatusUnauthorized] != refusalLimit || codes[http.StatusTooManyRequests] != 5000-refusalLimit {
		t.Errorf("replies = %v, want %d×401 then 429", codes, refusalLimit)
	}
	h.svc.Close() // as serve does at shutdown: the open window's refusals are written
	trail := h.trail()
	records := strings.Count(trail, `"compliance.refused"`) - before
	t.Logf("5000 unauthenticated requests → %d audit records", records)
	if records > 3 {
		t.Errorf("%d records for 5000 refusals, want at most 3", records)
	}
	for _, want := range []string{`"count":4999`, "unauthenticated=", "rate_limited="} {
		if !strings.Contains(trail, want) {
			t.Errorf("trail lacks %s:\n%s", want, trail)
		}
	}
}

// TestComplianceRefusalsWindows: the limit is per client and per window;
// a window's first refusal is written at once, the rest when it ends.
func TestComplianceRefusalsWindows(t *testing.T) {
	var mu sync.Mutex
	var recs []audit.Record
	r := newRefusals(func(_ context.Context, rec audit.Record) {
		mu.Lock()
		recs = append(recs, rec)
		mu.Unlock()
	})
	now := time.Unix(1_800_000_000, 0)
	r.now = func() time.Time { return now }
	var timers []func()
	r.after = func(_ time.Duration, f func()) { timers = append(timers, f) }
	ctx := context.Background()
	for range refusalLimit {
		r.note(ctx, "192.0.2.1", "unknown", "resolve", "unauthenticated")
	}
	if !r.limited("192.0.2.1") || r.limited("192.0.2.2") {
		t.Fatal("the limit is per client")
	}
	now = now.Add(refusalWindow)
	if r.limited("192.0.2.1") {
		t.Error("still limited after the window")
	}
	for _, f := range timers {
		f()
	}
	if len(recs) != 2 || recs[0].Count != 1 || recs[1].Count != refusalLimit-1 {
		t.Errorf("records = %+v, want the first at once and one aggregate of %d", recs, refusalLimit-1)
	}
	r.note(ctx, "192.0.2.1", "unknown", "resolve", "unauthenticated")
	if len(recs) != 3 {
		t.Errorf("a new window's first refusal is written at once: %d records", len(recs))
	}
}
