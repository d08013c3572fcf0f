package etcdstore

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Each serving node publishes under peers/<node id> how the other nodes
// reach its compliance API for the cluster's audit merge (a subject
// export or an audit listing on any node reads every node's trail). The
// value is opaque here: the compliance package owns its format. It lives
// under the node's lease, so a dead node's entry goes with it and the
// merge reports that node's trail unavailable rather than waiting on it.

func (l layout) peers() string { return l.base + "peers/" }

// errNoLease refuses a publication from a store that holds no node lease
// (a read-only reader).
var errNoLease = fmt.Errorf("%w: a read-only reader is not a node and publishes nothing", tokenize.ErrStore)

// PutPeer publishes this node's peer entry under its lease.
func (s *Store) PutPeer(ctx context.Context, value []byte) error {
	if s.closed.Load() {
		return errClosed
	}
	sess := s.session.Load()
	if s.opts.ReadOnly || sess == nil {
		return errNoLease
	}
	s.peerEntry.Store(&value)
	cctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.cli.Put(cctx, s.keys.peers()+s.opts.NodeID, string(value), clientv3.WithLease(sess.Lease())); err != nil {
		return fail("publish peer entry", err)
	}
	return nil
}

// republishPeer puts the entry again after the lease was renewed: the
// old lease took it along.
func (s *Store) republishPeer() {
	v := s.peerEntry.Load()
	if v == nil {
		return
	}
	if err := s.PutPeer(s.bg, *v); err != nil {
		s.log.Warn("peer entry not published again", "event", "etcd_peer_unpublished", "node", s.opts.NodeID, "err", err)
	}
}

// Peers returns the live nodes' peer entries by node id, this node's
// included.
func (s *Store) Peers(ctx context.Context) (map[string][]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.peers(), clientv3.WithPrefix())
	if err != nil {
		return nil, fail("read peer entries", err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), s.keys.peers())] = kv.Value
	}
	return out, nil
}

// NodeID is the id this store reads and writes its outbox under.
func (s *Store) NodeID() string { return s.opts.NodeID }
