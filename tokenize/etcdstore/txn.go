package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// maxAttempts bounds the runs of one Update under contention: far more
// than two nodes racing for the same new address ever need, few enough
// that a livelock ends as an error rather than a hung session.
const maxAttempts = 32

// View implements tokenize.Store: fn reads at one revision, pinned by its
// first read, so it sees a snapshot.
func (s *Store) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.metrics.observe(opView, time.Now())
	tx := &txn{s: s, ctx: ctx}
	if err := fn(tx); err != nil {
		if tx.err != nil {
			return tx.err // a store failure, which fn passed on
		}
		return err
	}
	return nil
}

// Update implements tokenize.Store as an optimistic transaction: fn runs
// on a snapshot with its writes buffered, and they commit in one etcd Txn
// only if no key fn depended on changed meanwhile (doc.go); otherwise fn
// runs again on a newer snapshot. A leader change or a timeout is retried
// while the first attempt is younger than the request timeout.
func (s *Store) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("%w: the store was opened read-only", tokenize.ErrStore)
	}
	begin := time.Now()
	defer s.metrics.observe(opUpdate, begin)
	for attempt := 0; ; attempt++ {
		if s.closed.Load() {
			return errClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The first run reads optimistically: serializably from any
		// member, without a quorum round, and keys a recent View found
		// absent from memory. A stale read costs no correctness: the
		// commit compares what was read and fails, and the next run
		// reads linearizably; so does a run whose fn failed, as the
		// failure may come from a stale read.
		tx := &txn{s: s, ctx: ctx, write: newWrites(), optimistic: attempt == 0}
		err := fn(tx)
		if err != nil && tx.err == nil {
			if tx.optimistic {
				continue
			}
			return err // fn's own error: nothing was written
		}
		committed := false
		if err == nil {
			committed, err = s.commit(ctx, tx)
		} else {
			err = tx.err
		}
		switch {
		case err == nil && committed:
			return nil
		case err == nil && attempt+1 >= maxAttempts:
			return fmt.Errorf("%w: etcd txn: still conflicting after %d attempts", tokenize.ErrStore, maxAttempts)
		case err == nil:
			backoff(attempt) // a conflict: run fn again on fresh reads
		case retryable(ctx, err) && time.Since(begin) < s.opts.RequestTimeout:
			s.log.Debug("etcd transaction retried", "event", "etcd_retry", "err", err)
			backoff(attempt)
		default:
			return err
		}
	}
}

// backoff spreads the retries of transactions that conflicted with each
// other, so they do not collide again in lock step.
func backoff(attempt int) {
	if attempt == 0 {
		return
	}
	d := time.Duration(min(attempt, 8)) * 5 * time.Millisecond
	time.Sleep(d/2 + rand.N(d))
}

// retryable reports an error after which the whole transaction may run
// again: the cluster changed leader, a member was unavailable, a call
// timed out (while the caller's context is alive), or the pinned revision
// was compacted. A commit whose outcome is unknown is retried too: its
// compares fail if it did commit, and fn then sees its own writes.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrFutureRev) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(unwrapAll(err)) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)
}

// unwrapAll returns the innermost error of a chain of single wraps, where
// gRPC's status lives.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// commit sends tx's writes in one Txn guarded by its compares. It reports
// false when a compare failed (a conflict).
func (s *Store) commit(ctx context.Context, tx *txn) (bool, error) {
	ops := tx.write.ops(s.keys, tx)
	if len(ops) == 0 {
		return true, nil // read only: the snapshot was consistent
	}
	cmps := tx.compares()
	if len(ops) > s.opts.MaxTxnOps || len(cmps) > s.opts.MaxTxnOps {
		return false, fmt.Errorf("%w: etcd txn of %d writes and %d compares exceeds max-txn-ops %d",
			tokenize.ErrStore, len(ops), len(cmps), s.opts.MaxTxnOps)
	}
	r := s.commits.do(&commit{cmps: cmps, ops: ops, keys: tx.write.keys(s.keys)})
	if r.err != nil {
		return false, r.err
	}
	if r.ok {
		s.own.add(r.rev)
		for key := range tx.write.puts {
			s.absent.drop(key)
		}
	}
	return r.ok, nil
}

// txn is a transaction: a snapshot reader, and with write set a buffer
// of writes and the record of what fn depended on.
type txn struct {
	s   *Store
	ctx context.Context
	rev int64 // the snapshot's revision, pinned by the first read
	// optimistic marks Update's first run (see Update).
	optimistic bool
	err        error // the first store failure, which fn may have wrapped

	write *writes // nil in a View
	// read holds the ModRevision (0: absent) of each key read by Token or
	// Meta; scanned those of the tokens a Tokens scan visited.
	read, scanned map[string]int64
}

// get reads at the snapshot's revision, pinning it on the first read.
func (t *txn) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	if t.optimistic {
		opts = append(opts, clientv3.WithSerializable())
	}
	ctx, cancel := t.s.call(t.ctx)
	defer cancel()
	resp, err := t.s.cli.Get(ctx, key, opts...)
	if err != nil {
		err = fail("get", err)
		if t.err == nil {
			t.err = err
		}
		return nil, err
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// value reads one key at the snapshot, noting its revision in a write
// transaction: the commit compares it.
func (t *txn) value(key string) ([]byte, error) {
	if t.write != nil {
		if v, ok := t.write.puts[key]; ok {
			return v, nil
		}
		if t.optimistic && t.s.absent.has(key) {
			t.noteRead(key, 0)
			return nil, nil
		}
	}
	resp, err := t.get(key)
	if err != nil {
		return nil, err
	}
	var v []byte
	var rev int64
	if len(resp.Kvs) == 1 {
		v, rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	} else if t.write == nil {
		t.s.absent.add(key)
	}
	t.noteRead(key, rev)
	return v, nil
}

// noteRead records in a write transaction the revision of a key read
// (0: absent), for the commit's compares.
func (t *txn) noteRead(key string, rev int64) {
	if t.write != nil {
		if t.read == nil {
			t.read = map[string]int64{}
		}
		t.read[key] = rev
	}
}

// compares guards the commit (doc.go, "Transactions"): every key read by
// Token or Meta is unchanged, and so is every token written after a scan
// visited it. Tokens a scan visited but the transaction did not write are
// not compared: the map's batch work decides about each token from that
// token's value alone, so a change to one it left alone cannot make the
// batch wrong, and comparing them would exceed max-txn-ops.
func (t *txn) compares() []clientv3.Cmp {
	var cmps []clientv3.Cmp
	add := func(key string, rev int64) {
		if rev == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
		}
	}
	for key, rev := range t.read {
		add(key, rev)
	}
	for key := range t.write.puts {
		if _, read := t.read[key]; read {
			continue
		}
		if rev, ok := t.scanned[key]; ok {
			add(key, rev)
		}
	}
	return cmps
}

func (t *txn) Token(local string) ([]byte, error) { return t.value(t.s.keys.token(local)) }

func (t *txn) Meta(name string) ([]byte, error) { return t.value(t.s.keys.metaKey(name)) }

func (t *txn) PutToken(local string, v []byte) error {
	t.write.put(t.s.keys.token(local), v)
	return nil
}

func (t *txn) PutMeta(name string, v []byte) error {
	t.write.put(t.s.keys.metaKey(name), v)
	return nil
}
