package tokenize

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrErasedSubject refuses an address that was erased while SuppressErased
// was on.
var ErrErasedSubject = errors.New("address was erased and is suppressed")

// ErrScrubBusy reports that erased data could not be wiped yet (on bbolt:
// a read transaction older than the erasure, such as a long backup, stayed
// open until the context ended). The erasure itself is committed; wiping
// is retried by the next erasure or expiry.
var ErrScrubBusy = errors.New("read transactions still open; freed pages not wiped yet")

// EraseSubject erases every token of an address (GDPR Art. 17) in one
// transaction, wipes what held its ciphertext (Store.Wipe), and returns
// the tokens. When the wipe cannot finish (ErrScrubBusy, or a write
// error) the tokens are returned with the error: the erasure is done, the
// wipe is not.
func (m *Map) EraseSubject(ctx context.Context, addr string) ([]string, error) {
	tokens, err := m.Lookup(ctx, addr)
	if err != nil || len(tokens) == 0 {
		return nil, err
	}
	err = m.store.Update(ctx, func(tx Tx) error {
		for _, t := range tokens {
			if err := m.erase(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: erase: %w", ErrStore, err)
	}
	for _, t := range tokens {
		m.forget(t)
	}
	return tokens, m.store.Wipe(ctx)
}

// Expire erases the live tokens last used before the given time
// (retention), batch by batch. Each batch's token.expired records are
// committed with the erasure, in the audit outbox, so an expiry is
// audited exactly when it happens; while the audit trail cannot take
// records nothing expires (ErrAudit). detail goes into each record
// (the retention setting that caused it). Erased data is wiped at the end.
// It returns how many tokens expired.
func (m *Map) Expire(ctx context.Context, before time.Time, detail map[string]string) (int, error) {
	if err := m.touch.flush(); err != nil {
		return 0, fmt.Errorf("%w: expire: %w", ErrStore, err)
	}
	total, after := 0, ""
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, next, err := m.expireBatch(ctx, before.Unix(), after, detail)
		total += n
		if err != nil {
			return total, err
		}
		if next == "" {
			break
		}
		after = next
	}
	if total > 0 {
		if err := m.store.Wipe(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

// expireBatch erases up to one batch of idle tokens after the key after.
// It returns how many it erased and the last key it looked at ("" at the
// end of the map).
func (m *Map) expireBatch(ctx context.Context, before int64, after string, detail map[string]string) (int, string, error) {
	if err := m.outbox.ready(ctx); err != nil {
		return 0, "", err
	}
	actor := m.outbox.actor(ctx)
	limit := max(1, m.store.MaxBatch()/(eraseWrites+1)) // an erase and an outbox entry each
	var locals []string
	var last string
	err := m.store.Update(ctx, func(tx Tx) error {
		locals, last = locals[:0], ""
		err := tx.Tokens(after, func(k string, v []byte) (bool, error) {
			last = k
			rec, err := decodeLive(v)
			if err == nil && rec.lastSeen < before && !m.touch.isPending(k) {
				err = withSeen(tx, k, rec) // the nodes' uses, when kept apart
			}
			if err == nil && rec.lastSeen < before && !m.touch.isPending(k) {
				locals = append(locals, k) // else erased, corrupt (left for the operator), or in use
			}
			if errors.Is(err, ErrStore) {
				return false, err
			}
			return len(locals) < limit, nil
		})
		if err != nil {
			return err
		}
		at := m.opts.Now()
		for _, local := range locals {
			if err := m.erase(tx, local); err != nil {
				return err
			}
			if err := m.outbox.put(tx, outboxEntry{Event: EventExpired, Token: local, Actor: actor, At: at, Detail: detail}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, "", fmt.Errorf("%w: expire: %w", ErrStore, err)
	}
	for _, local := range locals {
		m.forget(local)
	}
	m.outbox.added(len(locals))
	if len(locals) < limit {
		last = "" // the scan reached the end
	}
	return len(locals), last, nil
}
