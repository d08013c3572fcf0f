package boltstore

import (
	"context"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

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
func (db *Store) ScrubFree(ctx context.Context) (int, error) {
	f, err := os.OpenFile(db.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: scrub: %w", tokenize.ErrStore, err)
	}
	defer f.Close()
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("%w: scrub: %w", tokenize.ErrStore, err)
	}
	defer tx.Rollback() // nothing is changed through bbolt
	for db.bolt.Stats().OpenTxN > 0 {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", tokenize.ErrScrubBusy, ctx.Err())
		case <-time.After(scrubWait):
		}
	}
	n, err := wipeFreePages(tx, f, db.bolt.Info().PageSize)
	if err != nil {
		return n, fmt.Errorf("%w: scrub: %w", tokenize.ErrStore, err)
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("%w: scrub: %w", tokenize.ErrStore, err)
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
