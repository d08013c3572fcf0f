package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// maxBatch bounds the batch work of the map (expiry, re-encryption,
// outbox deletes) in one transaction, so sessions creating tokens wait
// for at most one batch's commit.
const maxBatch = 500

// View implements tokenize.Store through safeView.
func (db *Store) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.safeView(func(tx *bolt.Tx) error { return fn(readTx{tx}) })
}

// Update implements tokenize.Store. Every write shares the group commit:
// concurrent callers share one transaction and its fsyncs.
func (db *Store) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.commits.do(func(tx *bolt.Tx) error { return fn(writeTx{readTx{tx}}) })
}

// MaxBatch implements tokenize.Store.
func (db *Store) MaxBatch() int { return maxBatch }

// Watch implements tokenize.Store: this process alone writes the file
// (bbolt's flock), so nothing changes behind the map's back.
func (db *Store) Watch(context.Context) <-chan string { return nil }

// Wipe implements tokenize.Store with ScrubFree.
func (db *Store) Wipe(ctx context.Context) error {
	_, err := db.ScrubFree(ctx)
	return err
}
