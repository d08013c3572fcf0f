package tokenize

import (
	"context"
	"sync"
	"time"
)

// toucher collects last-seen times in memory and writes them in one
// transaction per interval: a per-message write would cost an fsync on the
// hot path for a figure that retention needs only to the hour.
type toucher struct {
	m       *Map
	mu      sync.Mutex
	pending map[string]int64
}

func newToucher(m *Map) *toucher { return &toucher{m: m, pending: map[string]int64{}} }

// seen notes a use of a token whose stored last-seen time is stored. It
// reports whether it queued a write, and the time queued.
func (t *toucher) seen(local string, stored int64) (int64, bool) {
	now := t.m.opts.Now()
	if now.Sub(time.Unix(stored, 0)) < t.m.opts.LastSeenGranularity {
		return 0, false
	}
	t.mu.Lock()
	t.pending[local] = now.Unix()
	t.mu.Unlock()
	return now.Unix(), true
}

// forget drops a pending time, so an erased token is not rewritten.
func (t *toucher) forget(local string) {
	t.mu.Lock()
	delete(t.pending, local)
	t.mu.Unlock()
}

// isPending reports whether a use of local waits to be written.
func (t *toucher) isPending(local string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.pending[local]
	return ok
}

func (t *toucher) run(ctx context.Context) {
	tick := time.NewTicker(t.m.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.flush(); err != nil {
				t.m.log.Error("last-seen flush failed; will retry", "event", "lastseen_flush", "err", err)
			}
		}
	}
}

// flush writes pending times, in transactions of at most the store's
// batch bound. A token erased meanwhile stays erased; on failure the
// times not written are kept for the next try.
func (t *toucher) flush() error {
	t.mu.Lock()
	batch := t.pending
	t.pending = map[string]int64{}
	t.mu.Unlock()
	locals := make([]string, 0, len(batch))
	for local := range batch {
		locals = append(locals, local)
	}
	size := t.m.store.MaxBatch()
	for len(locals) > 0 {
		chunk := locals[:min(size, len(locals))]
		if err := t.write(chunk, batch); err != nil {
			t.requeue(locals, batch)
			return err
		}
		locals = locals[len(chunk):]
	}
	return nil
}

// write stores the last-seen times of locals in one transaction: apart
// from the records where the store keeps them so (SeenTx), else in them.
// Each token is read first, so that an erased one gets no time: its
// erasure removed them, and the read makes a racing erasure fail the
// commit and this run see the tombstone.
func (t *toucher) write(locals []string, at map[string]int64) error {
	return t.m.store.Update(context.Background(), func(tx Tx) error {
		seen, apart := tx.(SeenTx)
		for _, local := range locals {
			rec, err := liveRecord(tx, local)
			if err != nil || rec.lastSeen >= at[local] {
				continue
			}
			if apart {
				err = seen.PutSeen(local, at[local])
			} else {
				rec.lastSeen = at[local]
				err = tx.PutToken(local, rec.encode())
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// withSeen sets rec's last-seen time to the latest of its own and the
// nodes' (SeenTx); a store without SeenTx keeps it in the record.
func withSeen(tx ReadTx, local string, rec *record) error {
	seen, ok := tx.(SeenTx)
	if !ok {
		return nil
	}
	at, err := seen.Seen(local)
	if err != nil {
		return err
	}
	rec.lastSeen = max(rec.lastSeen, at)
	return nil
}

// requeue puts back times not written, unless a newer use came meanwhile.
func (t *toucher) requeue(locals []string, at map[string]int64) {
	t.mu.Lock()
	for _, local := range locals {
		if _, ok := t.pending[local]; !ok {
			t.pending[local] = at[local]
		}
	}
	t.mu.Unlock()
}
