package tokenize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrErasedSubject refuses an address that was erased while SuppressErased
// was on.
var ErrErasedSubject = errors.New("address was erased and is suppressed")

// ErrScrubBusy reports that freed pages could not be wiped because a read
// transaction older than the erasure (a long backup) stayed open until the
// context ended. The erasure itself is committed; wiping is retried by the
// next erasure or by ScrubFree.
var ErrScrubBusy = errors.New("read transactions still open; freed pages not wiped yet")

// scrubWait is how often ScrubFree looks for open read transactions.
const scrubWait = 2 * time.Millisecond

// ScrubFree overwrites every free page of the database file with zeros
// and syncs it, and returns how many pages it wiped.
//
// bbolt copies a page on write and only frees the old copy, so after an
// erasure the address's ciphertext (and every earlier copy of its leaf)
// stays in free pages until they happen to be reused. GDPR Art. 17 asks
// for erasure, so the free pages are wiped explicitly.
//
// It holds the write transaction (no page is freed or allocated meanwhile)
// and waits until no read transaction is open: one begun before the
// erasure may still read the pages about to be zeroed, while one begun
// later sees only the current tree, which never points at a free page.
func (db *DB) ScrubFree(ctx context.Context) (int, error) {
	f, err := os.OpenFile(db.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: scrub: %w", ErrStore, err)
	}
	defer f.Close()
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("%w: scrub: %w", ErrStore, err)
	}
	defer tx.Rollback() // nothing is changed through bbolt
	for db.bolt.Stats().OpenTxN > 0 {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", ErrScrubBusy, ctx.Err())
		case <-time.After(scrubWait):
		}
	}
	n, err := wipeFreePages(tx, f, db.bolt.Info().PageSize)
	if err != nil {
		return n, fmt.Errorf("%w: scrub: %w", ErrStore, err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("%w: scrub: %w", ErrStore, err)
	}
	return n, nil
}

func wipeFreePages(tx *bolt.Tx, f *os.File, pageSize int) (int, error) {
	zero := make([]byte, pageSize)
	n := 0
	for id := 2; ; id++ { // pages 0 and 1 are the meta pages
		info, err := tx.Page(id)
		if err != nil {
			return n, err
		}
		if info == nil {
			return n, nil // past the high-water mark
		}
		if info.Type != "free" {
			continue
		}
		if _, err := f.WriteAt(zero, int64(id)*int64(pageSize)); err != nil {
			return n, err
		}
		n++
	}
}

// EraseSubject erases every token of an address (GDPR Art. 17) in one
// transaction, wipes the freed pages that held its ciphertext, and returns
// the tokens. When the wipe cannot finish (ErrScrubBusy, or a write
// error) the tokens are returned with the error: the erasure is done, the
// wipe is not.
func (m *Map) EraseSubject(ctx context.Context, address string) ([]string, error) {
	tokens, err := m.Lookup(ctx, address)
	if err != nil || len(tokens) == 0 {
		return nil, err
	}
	err = m.db.bolt.Update(func(tx *bolt.Tx) error {
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
	_, err = m.db.ScrubFree(ctx)
	return tokens, err
}

// expireBatch bounds one expiry transaction.
const expireBatch = 500

// Expire erases the live tokens last used before the given time
// (retention), batch by batch. Each batch is handed to audit inside its
// transaction, before the erasure is committed: a batch that cannot be
// audited is not erased, and the sweep stops with the error. Freed pages
// are wiped at the end. It returns how many tokens expired.
func (m *Map) Expire(ctx context.Context, before time.Time, audit func(ctx context.Context, tokens []string) error) (int, error) {
	if err := m.touch.flush(); err != nil {
		return 0, fmt.Errorf("%w: expire: %w", ErrStore, err)
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := m.expireBatch(ctx, before.Unix(), audit)
		total += n
		if err != nil {
			return total, err
		}
		if n < expireBatch {
			break
		}
	}
	if total > 0 {
		if _, err := m.db.ScrubFree(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

func (m *Map) expireBatch(ctx context.Context, before int64, audit func(context.Context, []string) error) (int, error) {
	var n int
	err := m.db.bolt.Update(func(tx *bolt.Tx) error {
		var locals, tokens []string
		c := tx.Bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil && len(locals) < expireBatch; k, v = c.Next() {
			rec, err := decodeLive(v)
			if err != nil || rec.lastSeen >= before || m.touch.isPending(string(k)) {
				continue // erased, corrupt (left for the operator), or in use
			}
			locals = append(locals, string(k))
			tokens = append(tokens, m.opts.Format.Address(string(k)))
		}
		if len(locals) == 0 {
			return nil
		}
		if err := audit(ctx, tokens); err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
		for _, local := range locals {
			if err := m.erase(tx, local); err != nil {
				return err
			}
		}
		n = len(locals)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w: expire: %w", ErrStore, err)
	}
	return n, nil
}
