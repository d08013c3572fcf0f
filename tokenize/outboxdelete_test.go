package tokenize_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// deleteCounting is a store that notes the size of each DeleteOutbox and
// fails the failAt-th one (counting from 1; 0: none), as an etcd Txn that
// timed out would.
type deleteCounting struct {
	*storetest.Mem
	mu     sync.Mutex
	sizes  []int
	failAt int
}

var errDeleteFailed = errors.New("delete failed")

func (s *deleteCounting) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	return s.Mem.Update(ctx, func(tx tokenize.Tx) error { return fn(countDeletes{Tx: tx, s: s}) })
}

func (s *deleteCounting) deletes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

type countDeletes struct {
	tokenize.Tx
	s *deleteCounting
}

func (c countDeletes) DeleteOutbox(refs []string) error {
	c.s.mu.Lock()
	c.s.sizes = append(c.s.sizes, len(refs))
	fail := len(c.s.sizes) == c.s.failAt
	c.s.mu.Unlock()
	if fail {
		return errDeleteFailed
	}
	return c.Tx.DeleteOutbox(refs)
}

// deliverCounting notes the size of each delivery that succeeded.
type deliverCounting struct {
	*fakeAuditor
	mu    sync.Mutex
	sizes []int
}

func (a *deliverCounting) Deliver(ctx context.Context, recs []tokenize.Change) error {
	err := a.fakeAuditor.Deliver(ctx, recs)
	if err == nil {
		a.mu.Lock()
		a.sizes = append(a.sizes, len(recs))
		a.mu.Unlock()
	}
	return err
}

func (a *deliverCounting) deliveries() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.sizes...)
}

// TestOutboxDeletesInMaxBatchChunks: one delivery takes more entries than
// one store transaction may delete (MaxBatch); they are deleted in chunks
// of MaxBatch. When one chunk's delete fails, the entries deleted stay
// deleted, the others are deleted by the next pass without being
// delivered again: every record reaches the trail once, and the outbox
// ends empty. The entries are those a hung trail left in the outbox, so
// that the first pass finds all of them, whatever the timing.
func TestOutboxDeletesInMaxBatchChunks(t *testing.T) {
	tests := []struct {
		name   string
		failAt int
		want   []int // the sizes of the DeleteOutbox calls
	}{
		{"all deleted", 0, []int{4, 4, 2}},
		{"second chunk fails", 2, []int{4, 4, 4, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			mem := storetest.NewMem()
			hung := &storetest.Auditor{Hold: make(chan struct{})}
			first, err := tokenize.NewMap(mem, testKeyring(1), tokenize.Options{Format: testFormat, Tenant: "test", Audit: hung})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if _, err := first.Tokenize(ctx, fmt.Sprintf("c%d@example.com", i), ""); err != nil {
					t.Fatal(err)
				}
			}
			close(hung.Hold)
			if err := first.Close(); err == nil {
				t.Fatal("Close delivered to a hung trail")
			}

			s := &deleteCounting{Mem: mem.Reopen(), failAt: tt.failAt}
			s.MaxBatchSize = 4
			fa := &deliverCounting{fakeAuditor: &fakeAuditor{}}
			m, err := tokenize.NewMap(s, testKeyring(1), tokenize.Options{Format: testFormat, Tenant: "test", Audit: fa})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			// The first sync may meet the failed delete; the drain loop
			// retries, and a later sync finds everything delivered.
			waitFor(t, "an empty outbox", func() bool {
				_ = m.SyncAudit(ctx)
				n := 0
				err := s.View(ctx, func(tx tokenize.ReadTx) error {
					n, err = tx.OutboxLen()
					return err
				})
				return err == nil && n == 0
			})
			refs := map[string]int{}
			for _, r := range fa.delivered() {
				refs[r.Ref]++
			}
			if len(refs) != 10 || len(fa.delivered()) != 10 {
				t.Errorf("%d records delivered for %d refs; want 10 once each", len(fa.delivered()), len(refs))
			}
			if got := fa.deliveries(); fmt.Sprint(got) != "[10]" {
				t.Errorf("deliveries of %v records; want one of 10", got)
			}
			if got := s.deletes(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("DeleteOutbox sizes = %v; want %v", got, tt.want)
			}
		})
	}
}
