// Package storetest holds the conformance suite every tokenize.Store
// backend passes (Run) and an in-memory Store (Mem) for the unit tests of
// the map's consumers: the rewriter, the routes and the compliance service.
package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

// Mem is an in-memory tokenize.Store. Updates hold a write lock and undo
// their writes when fn fails; views hold a read lock, so a view sees one
// consistent state. Closing it keeps the data: Reopen gives the same
// contents, as a restart of a process would.
type Mem struct {
	data   *memData
	closed bool
	// MaxBatchSize is what MaxBatch reports; 0 means 500.
	MaxBatchSize int
}

type memData struct {
	mu      sync.RWMutex
	tokens  map[string][]byte
	outbox  map[string][]byte
	meta    map[string][]byte
	keys    []vault.WrappedKey
	nextRef uint64
}

var _ tokenize.Store = (*Mem)(nil)

// NewMem returns an empty store.
func NewMem() *Mem {
	return &Mem{data: &memData{tokens: map[string][]byte{}, outbox: map[string][]byte{}, meta: map[string][]byte{}}}
}

// Reopen returns a new open store with the contents of s (closed or not),
// as a restart would find them.
func (s *Mem) Reopen() *Mem { return &Mem{data: s.data, MaxBatchSize: s.MaxBatchSize} }

var errClosed = fmt.Errorf("%w: store closed", tokenize.ErrStore)

// View implements tokenize.Store.
func (s *Mem) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.data.mu.RLock()
	defer s.data.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	return fn(&memTx{d: s.data})
}

// Update implements tokenize.Store: fn writes in place under the write
// lock, and its writes are undone when it fails.
func (s *Mem) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	if s.closed {
		return errClosed
	}
	tx := &memTx{d: s.data, write: true}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	return nil
}

// MaxBatch implements tokenize.Store.
func (s *Mem) MaxBatch() int {
	if s.MaxBatchSize > 0 {
		return s.MaxBatchSize
	}
	return 500
}

// Watch implements tokenize.Store: one process, nothing to watch.
func (s *Mem) Watch(context.Context) <-chan string { return nil }

// Wipe implements tokenize.Store: replaced values are garbage already.
func (s *Mem) Wipe(context.Context) error { return nil }

// Close implements tokenize.Store.
func (s *Mem) Close() error {
	s.data.mu.Lock()
	s.closed = true
	s.data.mu.Unlock()
	return nil
}

// WrappedKeys implements vault.Store.
func (s *Mem) WrappedKeys(ctx context.Context) ([]vault.WrappedKey, error) {
	var out []vault.WrappedKey
	err := s.View(ctx, func(tokenize.ReadTx) error {
		out = slices.Clone(s.data.keys)
		return nil
	})
	return out, err
}

// PutWrappedKeys implements vault.Store: a key of the same purpose and
// version is replaced (a rewrap).
func (s *Mem) PutWrappedKeys(ctx context.Context, keys []vault.WrappedKey) error {
	return s.Update(ctx, func(tokenize.Tx) error {
		for _, k := range keys {
			s.data.keys = slices.DeleteFunc(s.data.keys, func(o vault.WrappedKey) bool {
				return o.Purpose == k.Purpose && o.Version == k.Version
			})
			s.data.keys = append(s.data.keys, k)
		}
		return nil
	})
}

// memTx implements tokenize.Tx on the store's maps. A write transaction
// keeps each key's value from before its first write, for rollback.
type memTx struct {
	d     *memData
	write bool
	undo  []func()
}

// save remembers m[k] as it was before this transaction first wrote it.
func (t *memTx) save(m map[string][]byte, k string) {
	old, had := m[k]
	t.undo = append(t.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

func (t *memTx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
}

func (t *memTx) Token(local string) ([]byte, error) { return t.d.tokens[local], nil }

func (t *memTx) Tokens(after string, fn func(string, []byte) (bool, error)) error {
	for _, k := range slices.Sorted(maps.Keys(t.d.tokens)) {
		if k <= after {
			continue
		}
		more, err := fn(k, t.d.tokens[k])
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *memTx) Outbox(limit int, fn func(string, []byte) error) error {
	for i, k := range slices.Sorted(maps.Keys(t.d.outbox)) {
		if i >= limit {
			break
		}
		if err := fn(k, t.d.outbox[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *memTx) OutboxLen() (int, error)          { return len(t.d.outbox), nil }
func (t *memTx) Meta(name string) ([]byte, error) { return t.d.meta[name], nil }

func (t *memTx) PutMeta(name string, v []byte) error {
	t.save(t.d.meta, name)
	t.d.meta[name] = slices.Clone(v)
	return nil
}

func (t *memTx) PutToken(local string, v []byte) error {
	t.save(t.d.tokens, local)
	t.d.tokens[local] = slices.Clone(v)
	return nil
}

func (t *memTx) AppendOutbox(v []byte) error {
	next := t.d.nextRef
	t.undo = append(t.undo, func() { t.d.nextRef = next })
	t.d.nextRef++
	ref := fmt.Sprintf("%016x", t.d.nextRef)
	t.save(t.d.outbox, ref)
	t.d.outbox[ref] = slices.Clone(v)
	return nil
}

func (t *memTx) DeleteOutbox(refs []string) error {
	for _, r := range refs {
		t.save(t.d.outbox, r)
		delete(t.d.outbox, r)
	}
	return nil
}
