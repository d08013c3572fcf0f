// Package boltstore keeps the token map in one bbolt file: the embedded
// default for a single node. It implements tokenize.Store with group
// commits (one fsync shared by concurrent token creations), safe views (a
// damaged page is tokenize.ErrStore, never a panic), a free-page wipe after
// erasure, and hot backup, restore and check of the file.
//
// File layout (schema 1, unchanged since the first release): bucket meta
// (schema version, wrapped keys key/<purpose>/<version>, map values),
// bucket tokens (token local part → record or tombstone), bucket audit
// (the outbox: 8-byte sequence ‖ 8 random bytes → entry).
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

// schemaVersion is the map layout this binary reads and writes.
const schemaVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketTokens = []byte("tokens") // token local part → record
	bucketAudit  = []byte("audit")  // outbox: token-creation records on their way to the audit trail

	keySchema        = []byte("schema")
	prefixWrappedKey = "key/" // key/<purpose>/<version> → wrapped data key
)

// Store is the bbolt file that holds the token map, its wrapped keys and
// the audit outbox.
type Store struct {
	bolt    *bolt.DB
	path    string
	commits *groupCommit // token creation and updates on the hot path
}

var (
	_ tokenize.Store    = (*Store)(nil)
	_ tokenize.Backuper = (*Store)(nil)
)

// Open opens or creates the database at path and checks its schema. It
// reads only the meta bucket: opening costs the same for any map size.
func Open(path string) (_ *Store, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%w: create data directory: %w", tokenize.ErrStore, err)
	}
	var b *bolt.DB
	// bbolt panics on a damaged page (a failed assertion) instead of
	// returning an error: the operator gets the file's name and what to
	// do, not a stack trace.
	defer func() {
		if r := recover(); r != nil {
			if b != nil {
				b.Close()
			}
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	b, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second,
		// The hashmap freelist keeps commits fast in large files.
		FreelistType: bolt.FreelistMapType,
		// A writer that must grow the memory map waits for every open
		// read transaction, so a long backup or an erasure's page wipe
		// would stall token creation each time the file crossed a
		// mapping size. Mapping 64 MiB up front (address space, not
		// memory or disk) removes those stalls below that size.
		InitialMmapSize: 64 << 20,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked by another process (is the proxy running?)", tokenize.ErrStore, path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, corrupt(path, err)
	case err != nil:
		return nil, fmt.Errorf("%w: open %s: %w", tokenize.ErrStore, path, err)
	}
	db := &Store{bolt: b, path: path, commits: &groupCommit{db: b}}
	if err := db.init(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// corrupt is the error for a database file bbolt cannot read.
func corrupt(path string, cause error) error {
	return fmt.Errorf("%w: %s is corrupt (%w): restore it from a backup (proxy restore FILE)", tokenize.ErrStore, path, cause)
}

// init creates the buckets of a new file, or checks an existing file's
// schema version.
func (db *Store) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketTokens) != nil {
				return fmt.Errorf("%w: %s has tokens but no meta bucket: not a tokenproxy database or damaged", tokenize.ErrStore, db.path)
			}
			return createBuckets(tx)
		}
		raw := meta.Get(keySchema)
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("%w: %s has no valid schema version", tokenize.ErrStore, db.path)
		}
		if v > schemaVersion {
			return fmt.Errorf("%w: %s has schema version %d, this binary supports up to %d: run a newer tokenproxy", tokenize.ErrSchemaTooNew, db.path, v, schemaVersion)
		}
		for _, name := range [][]byte{bucketTokens, bucketAudit} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: %s lacks bucket %q: damaged database", tokenize.ErrStore, db.path, name)
			}
		}
		return nil
	})
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketTokens, bucketAudit} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaVersion)))
}

// Path returns the database file's path.
func (db *Store) Path() string { return db.path }

// Close closes the file.
func (db *Store) Close() error { return db.bolt.Close() }

// WrappedKeys implements vault.Store.
func (db *Store) WrappedKeys(ctx context.Context) ([]vault.WrappedKey, error) {
	var keys []vault.WrappedKey
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		p := []byte(prefixWrappedKey)
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), prefixWrappedKey); k, v = c.Next() {
			purpose, ver, ok := strings.Cut(string(k[len(p):]), "/")
			n, err := strconv.ParseUint(ver, 10, 32)
			if !ok || err != nil {
				return fmt.Errorf("%w: malformed wrapped key entry", tokenize.ErrStore)
			}
			keys = append(keys, vault.WrappedKey{Purpose: vault.Purpose(purpose), Version: uint32(n), Wrapped: append([]byte(nil), v...)})
		}
		return nil
	})
	return keys, err
}

// PutWrappedKeys implements vault.Store.
func (db *Store) PutWrappedKeys(ctx context.Context, keys []vault.WrappedKey) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range keys {
			name := fmt.Sprintf("%s%s/%d", prefixWrappedKey, k.Purpose, k.Version)
			if err := meta.Put([]byte(name), k.Wrapped); err != nil {
				return err
			}
		}
		return nil
	})
}

// HasWrappedKeys reports whether the map already holds data keys, i.e.
// whether a key provider must be able to unwrap rather than create.
func (db *Store) HasWrappedKeys(ctx context.Context) (bool, error) {
	keys, err := db.WrappedKeys(ctx)
	return len(keys) > 0, err
}

// Backup writes a consistent copy of the open database to w while
// readers and writers go on (a bbolt read transaction).
func (db *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile writes a backup to path atomically (temporary file, fsync,
// rename), so a failed backup never leaves a truncated file behind.
func (db *Store) BackupFile(path string) (int64, error) {
	var n int64
	err := writeAtomic(path, func(f *os.File) error {
		var err error
		n, err = db.Backup(f)
		return err
	})
	return n, err
}

// Restore replaces the database at dst with the backup at src, after
// checking that src is a tokenproxy database this binary can read. dst may
// be damaged (that is what restores are for), so it is locked, not opened:
// the proxy must not be running.
func Restore(src, dst string) error {
	check, err := Open(src)
	if err != nil {
		return fmt.Errorf("backup %s: %w", src, err)
	}
	check.Close()
	unlock, err := lockFile(dst)
	if err != nil {
		return err
	}
	defer unlock() // hold the lock until the new file is in place
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: %w", tokenize.ErrStore, err)
	}
	defer in.Close()
	return writeAtomic(dst, func(f *os.File) error {
		_, err := io.Copy(f, in)
		return err
	})
}

// writeAtomic writes path through internal/safeio (temporary file, fsync,
// rename, directory fsync), so a failed write never leaves a truncated
// file behind.
func writeAtomic(path string, fill func(*os.File) error) error {
	if err := safeio.WriteFileFunc(path, 0o600, fill); err != nil {
		return fmt.Errorf("%w: write %s: %w", tokenize.ErrStore, path, err)
	}
	return nil
}
