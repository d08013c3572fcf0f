package etcdstore

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

var _ tokenize.Creator = (*Store)(nil)

// CreateToken implements tokenize.Creator: one Txn, If the token's key was
// never created (CreateRevision == 0) Then put the record and the outbox
// entry Else get the key, sent through the group commit so that the
// creations of concurrent sessions share a Txn. Against Update it saves
// the look-up before the write (a View, a round trip) and the generic
// transaction's bookkeeping; the compare is the one Update's commit would
// make for a key read absent.
//
// A shared Txn that fails (one of its creations found its key present) is
// retried creation by creation, each with its own Else. A commit whose
// outcome is unknown (timeout, leader change) is retried while the first
// attempt is younger than the request timeout, as in Update: had it
// committed, the retry finds this very record present, and the caller
// takes it as the token it is (one record, one outbox entry).
func (s *Store) CreateToken(ctx context.Context, local string, value, outbox []byte) ([]byte, error) {
	if s.opts.ReadOnly {
		return nil, fmt.Errorf("%w: the store was opened read-only", tokenize.ErrStore)
	}
	begin := time.Now()
	defer s.metrics.observe(opUpdate, begin)
	key := s.keys.token(local)
	ops := []clientv3.Op{clientv3.OpPut(key, string(value))}
	if outbox != nil {
		ops = append(ops, clientv3.OpPut(s.keys.outbox+entryName(newTxnID(), 0), string(outbox)))
	}
	c := &commit{cmps: []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		ops: ops, keys: []string{key}, orElse: key}
	for attempt := 0; ; attempt++ {
		if s.closed.Load() {
			return nil, errClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := s.commits.do(c)
		switch {
		case r.err == nil && r.ok:
			s.own.add(r.rev)
			s.absent.drop(key)
			return nil, nil
		case r.err == nil && r.present != nil:
			return r.present, nil
		case r.err == nil && attempt+1 >= maxAttempts:
			return nil, fmt.Errorf("%w: etcd txn: still conflicting after %d attempts", tokenize.ErrStore, maxAttempts)
		case r.err == nil:
			backoff(attempt) // failed in a shared Txn: alone next time
		case retryable(ctx, r.err) && time.Since(begin) < s.opts.RequestTimeout:
			s.log.Debug("etcd transaction retried", "event", "etcd_retry", "err", r.err)
			backoff(attempt)
		default:
			return nil, r.err
		}
	}
}
