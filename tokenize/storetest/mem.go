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

// Mem is an in-memory tokenize.Store. Updates are serialized and copy on
// write, so a View sees one consistent snapshot. Closing it keeps the data:
// Reopen gives the same contents, as a restart of a process would.
type Mem struct {
	mu     sync.Mutex // serializes Update
	data   *memData   // current snapshot; replaced, never changed, by Update
	closed bool
	// MaxBatchSize is what MaxBatch reports; 0 means 500.
	MaxBatchSize int
}

type memData struct {
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
func (s *Mem) Reopen() *Mem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Mem{data: s.data, MaxBatchSize: s.MaxBatchSize}
}

func (s *Mem) snapshot() (*memData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%w: store closed", tokenize.ErrStore)
	}
	return s.data, nil
}

// View implements tokenize.Store.
func (s *Mem) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := s.snapshot()
	if err != nil {
		return err
	}
	return fn(memTx{d})
}

// Update implements tokenize.Store: fn works on a copy that replaces the
// snapshot only when fn succeeds.
func (s *Mem) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: store closed", tokenize.ErrStore)
	}
	d := &memData{tokens: maps.Clone(s.data.tokens), outbox: maps.Clone(s.data.outbox),
		meta: maps.Clone(s.data.meta), keys: s.data.keys, nextRef: s.data.nextRef}
	if err := fn(memTx{d}); err != nil {
		return err
	}
	s.data = d
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
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// WrappedKeys implements vault.Store.
func (s *Mem) WrappedKeys(context.Context) ([]vault.WrappedKey, error) {
	d, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	return slices.Clone(d.keys), nil
}

// PutWrappedKeys implements vault.Store: a key of the same purpose and
// version is replaced (a rewrap).
func (s *Mem) PutWrappedKeys(ctx context.Context, keys []vault.WrappedKey) error {
	return s.Update(ctx, func(tx tokenize.Tx) error {
		d := tx.(memTx).d
		for _, k := range keys {
			d.keys = slices.DeleteFunc(slices.Clone(d.keys), func(o vault.WrappedKey) bool {
				return o.Purpose == k.Purpose && o.Version == k.Version
			})
			d.keys = append(d.keys, k)
		}
		return nil
	})
}

// memTx implements tokenize.Tx on one memData.
type memTx struct{ d *memData }

func (t memTx) Token(local string) ([]byte, error) { return t.d.tokens[local], nil }

func (t memTx) Tokens(after string, fn func(string, []byte) (bool, error)) error {
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

func (t memTx) Outbox(limit int, fn func(string, []byte) error) error {
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

func (t memTx) OutboxLen() (int, error)             { return len(t.d.outbox), nil }
func (t memTx) Meta(name string) ([]byte, error)    { return t.d.meta[name], nil }
func (t memTx) PutMeta(name string, v []byte) error { t.d.meta[name] = slices.Clone(v); return nil }

func (t memTx) PutToken(local string, v []byte) error {
	t.d.tokens[local] = slices.Clone(v)
	return nil
}

func (t memTx) AppendOutbox(v []byte) error {
	t.d.nextRef++
	t.d.outbox[fmt.Sprintf("%016x", t.d.nextRef)] = slices.Clone(v)
	return nil
}

func (t memTx) DeleteOutbox(refs []string) error {
	for _, r := range refs {
		delete(t.d.outbox, r)
	}
	return nil
}
