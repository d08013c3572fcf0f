package tokenize

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Copy moves a whole map from one backend to another (proxy store
// migrate): tokens and tombstones byte for byte, the map's meta values and
// the wrapped data keys. Records are copied sealed, so tokens stay the
// same and no address is ever decrypted; tombstones are copied like
// records, so an erasure is never undone by a move.
//
// It refuses a destination that holds anything (ErrNotEmpty) and a source
// whose audit outbox is not empty (ErrOutboxPending): an outbox entry's ref
// is chosen by its store and recorded in the trail on delivery, so an entry
// moved under a new ref could be delivered twice. Deliver the outbox first
// (open and close the map: Map.Close flushes it).
//
// Nothing may write either store while Copy runs: it reads the source in
// batches, not in one snapshot. The wrapped keys are written last, so a
// copy that failed halfway leaves a destination without keys, which a
// node cannot serve from by mistake; clear it and copy again.

// ErrNotEmpty refuses a copy into a store that holds a map already.
var ErrNotEmpty = errors.New("the destination store is not empty")

// ErrOutboxPending refuses a copy while audit records wait in the
// source's outbox.
var ErrOutboxPending = errors.New("the source's audit outbox is not empty")

// metaNames lists every meta value of the map, for Copy: the Store
// contract has no listing of meta values. A new meta name goes here.
var metaNames = []string{metaRecordsAtLeast}

// CopyStats says what Copy moved.
type CopyStats struct {
	Tokens     int // live records
	Tombstones int // erased tokens
	Meta       int
	Keys       int // wrapped data keys
}

// Copy copies the map in from into to, in transactions of at most
// to.MaxBatch() writes. See the comment above for what it refuses.
func Copy(ctx context.Context, from, to Store) (CopyStats, error) {
	var st CopyStats
	if err := checkCopy(ctx, from, to); err != nil {
		return st, err
	}
	if err := copyTokens(ctx, from, to, &st); err != nil {
		return st, err
	}
	if err := copyMeta(ctx, from, to, &st); err != nil {
		return st, err
	}
	keys, err := from.WrappedKeys(ctx)
	if err != nil {
		return st, fmt.Errorf("copy: read wrapped keys: %w", err)
	}
	if len(keys) > 0 {
		if err := to.PutWrappedKeys(ctx, keys); err != nil {
			return st, fmt.Errorf("copy: write wrapped keys: %w", err)
		}
	}
	st.Keys = len(keys)
	return st, nil
}

// checkCopy refuses a pending source outbox and a destination that holds
// tokens, outbox entries, meta values or wrapped keys.
func checkCopy(ctx context.Context, from, to Store) error {
	err := from.View(ctx, func(tx ReadTx) error {
		n, err := tx.OutboxLen()
		if err == nil && n > 0 {
			err = fmt.Errorf("%w: %d audit record(s) not yet in the trail", ErrOutboxPending, n)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("copy: source: %w", err)
	}
	if err := to.View(ctx, func(tx ReadTx) error { return checkEmpty(tx) }); err != nil {
		return fmt.Errorf("copy: destination: %w", err)
	}
	keys, err := to.WrappedKeys(ctx)
	if err != nil {
		return fmt.Errorf("copy: destination: %w", err)
	}
	if len(keys) > 0 {
		return fmt.Errorf("copy: destination: %w: it holds %d wrapped key(s)", ErrNotEmpty, len(keys))
	}
	return nil
}

func checkEmpty(tx ReadTx) error {
	found := false
	if err := tx.Tokens("", func(string, []byte) (bool, error) { found = true; return false, nil }); err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%w: it holds tokens", ErrNotEmpty)
	}
	if n, err := tx.OutboxLen(); err != nil || n > 0 {
		return errors.Join(err, fmt.Errorf("%w: its audit outbox holds %d record(s)", ErrNotEmpty, n))
	}
	for _, name := range metaNames {
		if v, err := tx.Meta(name); err != nil || v != nil {
			return errors.Join(err, fmt.Errorf("%w: it holds meta value %s", ErrNotEmpty, name))
		}
	}
	return nil
}

// copyTokens reads the source one batch at a time (a short view each, so
// an etcd snapshot never has to cover the whole map) and writes each
// batch in one destination transaction.
func copyTokens(ctx context.Context, from, to Store, st *CopyStats) error {
	type kv struct {
		local string
		value []byte
	}
	after := ""
	for {
		var batch []kv
		err := from.View(ctx, func(tx ReadTx) error {
			batch = batch[:0]
			return tx.Tokens(after, func(local string, v []byte) (bool, error) {
				v, err := withSeenValue(tx, local, v)
				if err != nil {
					return false, err
				}
				batch = append(batch, kv{local, v})
				return len(batch) < to.MaxBatch(), nil
			})
		})
		if err != nil {
			return fmt.Errorf("copy: read tokens after %q: %w", after, err)
		}
		if len(batch) == 0 {
			return nil
		}
		err = to.Update(ctx, func(tx Tx) error {
			for _, e := range batch {
				if err := tx.PutToken(e.local, e.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy: write tokens after %q: %w", after, err)
		}
		for _, e := range batch {
			if len(e.value) > 0 && e.value[0] == tombstoneFormat {
				st.Tombstones++
			} else {
				st.Tokens++
			}
		}
		after = batch[len(batch)-1].local
	}
}

func copyMeta(ctx context.Context, from, to Store, st *CopyStats) error {
	vals := map[string][]byte{}
	err := from.View(ctx, func(tx ReadTx) error {
		for _, name := range metaNames {
			v, err := tx.Meta(name)
			if err != nil {
				return err
			}
			if v != nil {
				vals[name] = slices.Clone(v)
			}
		}
		return nil
	})
	if err != nil || len(vals) == 0 {
		return err
	}
	st.Meta = len(vals)
	return to.Update(ctx, func(tx Tx) error {
		for name, v := range vals {
			if err := tx.PutMeta(name, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// withSeenValue returns a copy of a token's stored value with the nodes'
// last-seen times folded into the record, where the source keeps them
// apart (SeenTx): the destination keeps them in the record, or starts its
// own apart from it. Tombstones and undecodable values are copied as
// they are.
func withSeenValue(tx ReadTx, local string, v []byte) ([]byte, error) {
	rec, err := decodeLive(v)
	if err != nil {
		return slices.Clone(v), nil
	}
	before := rec.lastSeen
	if err := withSeen(tx, local, rec); err != nil {
		return nil, err
	}
	if rec.lastSeen == before {
		return slices.Clone(v), nil
	}
	return rec.encode(), nil
}
