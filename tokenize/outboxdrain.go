package tokenize

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Retry delays of a failing delivery: short at first, as most failures
// (a full disk freed, a rotated file) clear quickly.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 5 * time.Second
)

// deliveryLinger is how long the drain loop waits after the first new
// record before it delivers, so that one trail fdatasync carries many
// records. Measured on the inbound route with a new sender per message
// (20 sessions, 2 cores): delivering at once cost ~20 % of the route's
// throughput, about half of it in the extra syncs.
const deliveryLinger = 100 * time.Millisecond

// run delivers records as commits add them, until ctx ends.
func (o *outbox) run(ctx context.Context) {
	delay := retryMin
	var waiting []chan error // SyncAudit callers, answered once all is delivered
	for {
		n, err := o.drain(ctx)
		if ctx.Err() != nil {
			answer(waiting, ctx.Err())
			return
		}
		if err != nil {
			if o.failing.Swap(&err) == nil {
				o.m.log.Error("audit outbox: creation records not delivered; new tokens are refused until they are",
					"event", "audit_outbox_failing", "pending", o.pending.Load(), "err", err)
			}
			waiting = answer(waiting, err)
			if !o.pause(ctx, delay, &waiting) {
				return
			}
			delay = min(2*delay, retryMax)
			continue
		}
		if o.failing.Swap(nil) != nil {
			o.m.log.Info("audit outbox: delivering again", "event", "audit_outbox_recovered")
		}
		delay = retryMin
		if n == o.batch() {
			continue
		}
		waiting = answer(waiting, nil)
		select {
		case <-ctx.Done():
			return
		case r := <-o.syncs:
			waiting = append(waiting, r)
			continue // at once: someone reads the trail
		case <-o.wake:
		}
		// Let a burst of creations gather: the records are durable in
		// the outbox already, and each delivery costs the trail an
		// fdatasync, which competes with the token commits' own.
		if !o.pause(ctx, deliveryLinger, &waiting) {
			return
		}
	}
}

// adopt counts and delivers at once the entries of dead nodes' outboxes
// that the store took over (OutboxTakeover), until ch closes.
func (o *outbox) adopt(ch <-chan int) {
	for n := range ch {
		o.added(n)
	}
}

// pause waits d, or less when a caller of Sync arrives. It returns false
// when ctx ended.
func (o *outbox) pause(ctx context.Context, d time.Duration, waiting *[]chan error) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		answer(*waiting, ctx.Err())
		return false
	case r := <-o.syncs:
		*waiting = append(*waiting, r)
		return true
	case <-t.C:
		return true
	}
}

func answer(waiting []chan error, err error) []chan error {
	for _, r := range waiting {
		r <- err
	}
	return waiting[:0]
}

// sync asks the drain loop to deliver everything committed so far and
// waits until it has.
func (o *outbox) sync(ctx context.Context) error {
	if o.audit == nil {
		return nil
	}
	r := make(chan error, 1)
	select {
	case o.syncs <- r:
	case <-o.stopped:
		return errOutboxStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush delivers everything left, for Close: the loop has stopped.
func (o *outbox) flush(ctx context.Context) error {
	if o.audit == nil {
		return nil
	}
	for {
		n, err := o.drain(ctx)
		if err != nil {
			return fmt.Errorf("%d token creation records stay in the outbox until the next start: %w", o.pending.Load(), err)
		}
		if n < o.batch() {
			return nil
		}
	}
}

// batch is the most entries one delivery takes: one read of the outbox,
// one Deliver (one trail sync), then their deletes in transactions of at
// most the store's MaxBatch (deleteDelivered). Reading more than one
// delete transaction's worth matters on etcd, where listing the outbox in
// commit order reads every entry it holds whatever the limit (a sort by
// create revision), so each read costs the whole backlog: measured on 2
// cores with 50 callers creating tokens (docs/benchmarks.md), reading
// MaxBatch (128) at a time cost about a fifth of the members' CPU.
func (o *outbox) batch() int { return outboxBatch }

// drain delivers one batch and deletes it from the store. It returns the
// batch's size.
func (o *outbox) drain(ctx context.Context) (int, error) {
	recs, err := o.read(ctx)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	refs := make([]string, len(recs))
	for i, r := range recs {
		refs[i] = r.Ref
	}
	todo, err := o.skipRecovered(ctx, recs)
	if err != nil {
		return 0, err
	}
	if len(todo) > 0 {
		if err := o.audit.Deliver(ctx, todo); err != nil {
			// A failed delivery may have written records all the same
			// (a trail's Append returns when ctx ends, Close's, while its
			// writer may still write them): the next pass checks the
			// trail for this batch, as for entries an unclean stop left,
			// instead of writing it twice.
			o.uncertain(recs)
			return 0, err
		}
	}
	for _, r := range recs {
		o.delivered[r.Ref] = true
	}
	if err := o.deleteDelivered(ctx, refs); err != nil {
		return 0, err
	}
	return len(refs), nil
}

// deleteDelivered deletes delivered entries from the store, at most
// MaxBatch per transaction. An entry whose delete failed stays in
// delivered: the next pass deletes it without delivering it again.
func (o *outbox) deleteDelivered(ctx context.Context, refs []string) error {
	for chunk := range slices.Chunk(refs, o.m.store.MaxBatch()) {
		err := o.m.store.Update(ctx, func(tx Tx) error { return tx.DeleteOutbox(chunk) })
		if err != nil {
			return fmt.Errorf("%w: delete delivered outbox entries: %w", ErrStore, err)
		}
		for _, ref := range chunk {
			delete(o.delivered, ref)
		}
		o.pending.Add(-int64(len(chunk)))
	}
	return nil
}

// read returns up to one batch of entries in commit order.
func (o *outbox) read(ctx context.Context) (recs []Change, err error) {
	err = o.m.store.View(ctx, func(tx ReadTx) error {
		return tx.Outbox(o.batch(), func(ref string, v []byte) error {
			r, err := o.decode(ref, v)
			recs = append(recs, r)
			return err
		})
	})
	if errors.Is(err, ErrStore) {
		return nil, err // a damaged store, said by View
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read the audit outbox: %w", ErrStore, err)
	}
	return recs, nil
}

// skipRecovered returns the records still to deliver: those not already
// delivered by this process, and, among the entries found at start, not
// already in the trail (an unclean stop after Deliver, before the delete).
func (o *outbox) skipRecovered(ctx context.Context, recs []Change) ([]Change, error) {
	var todo []Change
	var check []string
	since := time.Time{}
	for _, r := range recs {
		if o.delivered[r.Ref] {
			continue
		}
		if o.leftover != "" && r.Ref <= o.leftover {
			if check == nil || r.At.Before(since) {
				since = r.At
			}
			check = append(check, r.Ref)
		}
		todo = append(todo, r)
	}
	if len(check) == 0 {
		o.clearLeftover(recs)
		return todo, nil
	}
	found, err := o.audit.Delivered(ctx, since.Add(-recoveryMargin), check)
	if err != nil {
		return nil, fmt.Errorf("check the trail for records left in the outbox: %w", err)
	}
	out := todo[:0]
	for _, r := range todo {
		if !found[r.Ref] {
			out = append(out, r)
		}
	}
	if len(found) > 0 {
		o.m.log.Info("audit outbox: records of an unclean stop were already in the trail", "event", "audit_outbox_recovered", "count", len(found))
	}
	o.clearLeftover(recs)
	return out, nil
}

// uncertain has the trail checked for recs before they are delivered
// again.
func (o *outbox) uncertain(recs []Change) {
	if last := recs[len(recs)-1].Ref; last > o.leftover {
		o.leftover = last
	}
}

// clearLeftover ends the start-up check once the batch reached past the
// entries found at start. Refs sort in commit order (Tx.AppendOutbox).
func (o *outbox) clearLeftover(recs []Change) {
	if o.leftover != "" && recs[len(recs)-1].Ref >= o.leftover {
		o.leftover = ""
	}
}
