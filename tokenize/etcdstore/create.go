package etcdstore

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

var _ tokenize.Creator = (*Store)(nil)

// CreateToken implements tokenize.Creator: one Txn, If the token's key and
// those in absent were never created (CreateRevision == 0) Then put the
// record and the outbox entry Else get the token's key, sent through the
// group commit so that the creations of concurrent sessions share a Txn.
// Against Update it saves the look-up before the write (a View, a round
// trip) and the generic transaction's bookkeeping; the compares are those
// Update's commit would make for keys read absent.
//
// A shared Txn that fails (one of its creations found a key present) is
// retried creation by creation, each with its own Else, so a failure
// reported here is this creation's own. A commit whose outcome is unknown
// (timeout, leader change) is retried while the first attempt is younger
// than the request timeout, as in Update: had it committed, the retry
// finds this very record present, and the caller takes it as the token it
// is (one record, one outbox entry).
func (s *Store) CreateToken(ctx context.Context, local string, absent []string, value, outbox []byte) (bool, []byte, error) {
	if s.opts.ReadOnly {
		return false, nil, fmt.Errorf("%w: the store was opened read-only", tokenize.ErrStore)
	}
	begin := time.Now()
	defer s.metrics.observe(opUpdate, begin)
	key := s.keys.token(local)
	ops := []clientv3.Op{clientv3.OpPut(key, string(value))}
	if outbox != nil {
		ops = append(ops, clientv3.OpPut(s.keys.outbox+entryName(newTxnID(), 0), string(outbox)))
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	for _, other := range absent {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.keys.token(other)), "=", 0))
	}
	c := &commit{cmps: cmps, ops: ops, keys: []string{key}, orElse: key}
	for attempt := 0; ; attempt++ {
		if s.closed.Load() {
			return false, nil, errClosed
		}
		if err := ctx.Err(); err != nil {
			return false, nil, err
		}
		r := s.commits.do(c)
		switch {
		case r.err == nil && r.ok:
			s.own.add(r.rev)
			s.absent.drop(key)
			return true, nil, nil
		case r.err == nil:
			// A failed Txn was this creation's own (groupcommit.go
			// retries a failed shared Txn creation by creation, each
			// with its Else): a key compared holds a value.
			return false, r.present, nil
		case retryable(ctx, r.err) && time.Since(begin) < s.opts.RequestTimeout:
			s.log.Debug("etcd transaction retried", "event", "etcd_retry", "err", r.err)
			backoff(attempt)
		default:
			return false, nil, r.err
		}
	}
}
