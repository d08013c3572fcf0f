package tokenize_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// fakeAuditor stands in for the audit trail.
type fakeAuditor struct {
	mu         sync.Mutex
	recs       []tokenize.Change
	ready      error
	deliverErr error
	// writeThenFail makes the next Deliver write its records and fail
	// (as a trail's Append whose ctx ended while its writer wrote them).
	writeThenFail bool
	inTrail       map[string]bool // refs Delivered reports as present
	asked         []string        // refs Delivered was asked about
	since         time.Time
}

type actorKey struct{}

func (f *fakeAuditor) Actor(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}

func (f *fakeAuditor) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeAuditor) Deliver(_ context.Context, recs []tokenize.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deliverErr != nil {
		return f.deliverErr
	}
	f.recs = append(f.recs, recs...)
	if f.writeThenFail {
		f.writeThenFail = false
		if f.inTrail == nil {
			f.inTrail = map[string]bool{}
		}
		for _, r := range recs {
			f.inTrail[r.Ref] = true
		}
		return context.Canceled
	}
	return nil
}

func (f *fakeAuditor) Delivered(_ context.Context, since time.Time, refs []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked, f.since = append(f.asked, refs...), since
	out := map[string]bool{}
	for _, r := range refs {
		if f.inTrail[r] {
			out[r] = true
		}
	}
	return out, nil
}

func (f *fakeAuditor) set(fn func(*fakeAuditor)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeAuditor) delivered() []tokenize.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// waitFor polls cond: delivery is asynchronous by design.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func outboxLen(t *testing.T, tm *testMap) int {
	t.Helper()
	var n int
	if err := tm.store.View(context.Background(), func(tx tokenize.ReadTx) error {
		var err error
		n, err = tx.OutboxLen()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOutboxDeliversEachCreationOnce(t *testing.T) {
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	ctx := context.WithValue(context.Background(), actorKey{}, "route:inbound")
	var want []string
	for _, a := range []string{"a@example.com", "b@example.com", "A@example.com", "c@example.com"} {
		iss, err := tm.Tokenize(ctx, a, "")
		if err != nil {
			t.Fatal(err)
		}
		if iss.New {
			want = append(want, iss.Address)
		}
	}
	if len(want) != 3 {
		t.Fatalf("%d new tokens, want 3", len(want))
	}
	waitFor(t, "three records", func() bool { return len(fa.delivered()) == 3 })
	refs := map[string]bool{}
	for i, r := range fa.delivered() {
		if r.Token != want[i] || r.Actor != "route:inbound" || r.At.IsZero() || refs[r.Ref] {
			t.Errorf("record %d = %+v; want token %s, actor route:inbound, a time, a unique ref", i, r, want[i])
		}
		refs[r.Ref] = true
	}
	waitFor(t, "an empty outbox", func() bool { return outboxLen(t, tm) == 0 })
	if len(fa.asked) != 0 {
		t.Errorf("Delivered asked %v after a clean start", fa.asked)
	}
}

// TestOutboxDeliveryFailedAfterWriting: a delivery that wrote its records
// and then failed (the trail's Append returned on a cancelled context) is
// not written again: the next pass finds the records in the trail and
// only deletes them from the outbox.
func TestOutboxDeliveryFailedAfterWriting(t *testing.T) {
	fa := &fakeAuditor{writeThenFail: true}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	for _, a := range []string{"a@example.com", "b@example.com"} {
		if _, err := tm.Tokenize(context.Background(), a, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "an empty outbox", func() bool { return outboxLen(t, tm) == 0 })
	refs := map[string]int{}
	for _, r := range fa.delivered() {
		refs[r.Ref]++
	}
	if len(refs) != 2 || refs[fa.delivered()[0].Ref] != 1 || len(fa.delivered()) != 2 {
		t.Errorf("delivered %+v; want each of the two records once", fa.delivered())
	}
}

func TestOutboxNotReadyRefusesCreation(t *testing.T) {
	ctx := context.Background()
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	known, err := tm.Tokenize(ctx, "known@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	fa.set(func(f *fakeAuditor) { f.ready = errors.New("trail closed") })
	if _, err := tm.Tokenize(ctx, "new@example.com", ""); !errors.Is(err, tokenize.ErrAudit) {
		t.Fatalf("Tokenize with the trail not ready = %v, want ErrAudit", err)
	}
	if toks, err := tm.Lookup(ctx, "new@example.com"); err != nil || len(toks) != 0 {
		t.Fatalf("a token was stored although its creation cannot be audited: %v %v", toks, err)
	}
	// A known address needs no record: mail from it keeps flowing.
	if iss, err := tm.Tokenize(ctx, "known@example.com", ""); err != nil || iss.Address != known.Address {
		t.Fatalf("Tokenize of a known address = %+v, %v", iss, err)
	}
}

func TestOutboxFailingDeliveryRefusesThenRecovers(t *testing.T) {
	ctx := context.Background()
	fa := &fakeAuditor{deliverErr: errors.New("no space left on device")}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	first, err := tm.Tokenize(ctx, "first@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	// Until the first delivery fails, creation may still succeed.
	created := 1
	waitFor(t, "creation refused", func() bool {
		_, err := tm.Tokenize(ctx, fmt.Sprintf("n%d@example.com", created), "")
		if err == nil {
			created++
		}
		return errors.Is(err, tokenize.ErrAudit)
	})
	if n := outboxLen(t, tm); n != created {
		t.Fatalf("outbox holds %d records, want %d", n, created)
	}
	fa.set(func(f *fakeAuditor) { f.deliverErr = nil })
	waitFor(t, "the held records", func() bool { return len(fa.delivered()) == created })
	if got := fa.delivered()[0].Token; got != first.Address {
		t.Fatalf("delivered %s first, want %s", got, first.Address)
	}
	waitFor(t, "creation accepted again", func() bool {
		_, err := tm.Tokenize(ctx, "second@example.com", "")
		return err == nil
	})
}

// TestOutboxRecoversAfterUncleanStop leaves records in the outbox (the
// trail refused them until the stop), then restarts with a trail that
// already holds one of them, as after a crash between delivery and delete:
// each record reaches the trail exactly once, and no token is without one.
func TestOutboxRecoversAfterUncleanStop(t *testing.T) {
	ctx := context.Background()
	down := &fakeAuditor{deliverErr: errors.New("trail down")}
	tm := openTestMap(t, tokenize.Options{Audit: down})
	var toks []string
	for _, a := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		iss, err := tm.Tokenize(ctx, a, "")
		if err != nil {
			// After the first failed delivery creation is refused.
			break
		}
		toks = append(toks, iss.Address)
	}
	if len(toks) == 0 {
		t.Fatal("no token created")
	}
	if err := tm.Map.Close(); err == nil {
		t.Fatal("Close delivered although the trail is down")
	}
	var refs []string
	tm.store.View(context.Background(), func(tx tokenize.ReadTx) error {
		return tx.Outbox(1<<20, func(ref string, v []byte) error {
			r, err := tm.DecodeOutbox(ref, v)
			refs = append(refs, r.Ref)
			return err
		})
	})
	if len(refs) != len(toks) {
		t.Fatalf("outbox holds %d records for %d tokens", len(refs), len(toks))
	}
	path, keys := tm.path, tm.keys
	tm.close()

	up := &fakeAuditor{inTrail: map[string]bool{refs[0]: true}}
	tm2 := reopenTestMap(t, path, keys, tokenize.Options{Audit: up})
	waitFor(t, "an empty outbox", func() bool { return outboxLen(t, tm2) == 0 })
	got := up.delivered()
	if len(got) != len(toks)-1 {
		t.Fatalf("delivered %d records, want %d (one was in the trail already)", len(got), len(toks)-1)
	}
	for i, r := range got {
		if r.Token != toks[i+1] {
			t.Errorf("record %d is for %s, want %s", i, r.Token, toks[i+1])
		}
	}
	if !slices.Equal(up.asked, refs) || up.since.After(time.Now().Add(-tokenize.RecoveryMargin)) {
		t.Errorf("Delivered asked %v since %v; want %v since before the commits", up.asked, up.since, refs)
	}
}

func TestOutboxCloseDelivers(t *testing.T) {
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	for _, a := range []string{"a@example.com", "b@example.com"} {
		if _, err := tm.Tokenize(context.Background(), a, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := tm.Map.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(fa.delivered()); n != 2 || outboxLen(t, tm) != 0 {
		t.Fatalf("after Close: %d delivered, %d left in the outbox", n, outboxLen(t, tm))
	}
}

func TestSyncAuditDeliversAtOnce(t *testing.T) {
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	ctx := context.Background()
	for i := range 3 {
		if _, err := tm.Tokenize(ctx, fmt.Sprintf("s%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
		// Without SyncAudit the record could wait deliveryLinger.
		if err := tm.SyncAudit(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(fa.delivered()); n != i+1 {
			t.Fatalf("after SyncAudit %d records delivered, want %d", n, i+1)
		}
	}
	fa.set(func(f *fakeAuditor) { f.deliverErr = errors.New("trail down") })
	if _, err := tm.Tokenize(ctx, "late@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if err := tm.SyncAudit(ctx); err == nil {
		t.Fatal("SyncAudit succeeded although the trail refused the record")
	}
	fa.set(func(f *fakeAuditor) { f.deliverErr = nil })
	tm.Map.Close()
	if err := tm.SyncAudit(ctx); !errors.Is(err, tokenize.ErrOutboxStopped) {
		t.Fatalf("SyncAudit after Close = %v, want errOutboxStopped", err)
	}
}

// TestOutboxFullRefusesCreation: a trail far behind (outboxLimit records
// not yet delivered) stops token creation until it catches up.
func TestOutboxFullRefusesCreation(t *testing.T) {
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	tm.SetOutboxPending(tokenize.OutboxLimit)
	_, err := tm.Tokenize(context.Background(), "new@example.com", "")
	if !errors.Is(err, tokenize.ErrAudit) || !errors.Is(err, tokenize.ErrOutboxFull) {
		t.Fatalf("Tokenize with a full outbox = %v, want ErrAudit (outbox full)", err)
	}
	tm.SetOutboxPending(0)
	if _, err := tm.Tokenize(context.Background(), "new@example.com", ""); err != nil {
		t.Fatalf("Tokenize once the outbox drained = %v", err)
	}
}

// TestOutboxRetriesOnDemand: once the trail takes records again, the next
// new address gets its token at once; it does not wait for the drain
// loop's next retry, which backs off to seconds during a long outage
// (a full disk that an operator frees).
func TestOutboxRetriesOnDemand(t *testing.T) {
	ctx := context.Background()
	fa := &fakeAuditor{deliverErr: errors.New("no space left on device")}
	tm := openTestMap(t, tokenize.Options{Audit: fa})
	n := 0
	waitFor(t, "creation refused", func() bool {
		n++
		_, err := tm.Tokenize(ctx, fmt.Sprintf("n%d@example.com", n), "")
		return errors.Is(err, tokenize.ErrAudit)
	})
	time.Sleep(400 * time.Millisecond) // the loop's retry delay grows past it
	fa.set(func(f *fakeAuditor) { f.deliverErr = nil })
	if _, err := tm.Tokenize(ctx, "after@example.com", ""); err != nil {
		t.Fatalf("first creation after the trail recovered: %v", err)
	}
}

// sharedMem is the in-memory store posing as one whose outbox another
// node may take over.
type sharedMem struct{ *storetest.Mem }

func (sharedMem) TakenOver(context.Context) <-chan int { return nil }

// TestAppendRecord: a record that names no token goes into a shared
// store's outbox; a one-node store (no OutboxTakeover) refuses it, and so
// does a shared one for a record of another kind.
func TestAppendRecord(t *testing.T) {
	ctx := context.Background()
	rotated := tokenize.Change{Event: tokenize.EventKeysRotated, Actor: "cli:root", At: time.Now()}
	if err := tokenize.AppendRecord(ctx, storetest.NewMem(), rotated); !errors.Is(err, tokenize.ErrAudit) {
		t.Errorf("AppendRecord on a one-node store = %v, want ErrAudit", err)
	}
	s := sharedMem{storetest.NewMem()}
	if err := tokenize.AppendRecord(ctx, s, tokenize.Change{Event: tokenize.EventCreated}); !errors.Is(err, tokenize.ErrAudit) {
		t.Errorf("AppendRecord of a creation = %v, want ErrAudit", err)
	}
	if err := tokenize.AppendRecord(ctx, s, rotated); err != nil {
		t.Fatal(err)
	}
	var n int
	s.View(ctx, func(tx tokenize.ReadTx) error { var err error; n, err = tx.OutboxLen(); return err })
	if n != 1 {
		t.Errorf("outbox holds %d entries, want 1", n)
	}
}
