package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// DefaultLeaseTTL is the default of Options.LeaseTTL.
const DefaultLeaseTTL = 5 * time.Second

// takeoverWait bounds how long Open waits for another node to finish
// delivering this node's outbox (taken over while this node was down):
// one delivery normally takes well under a second, so waiting longer
// means the claimer's trail is stuck, which the operator must see.
const takeoverWait = 30 * time.Second

// ErrNodeIDTaken refuses a second live node with the same node id: both
// would drain one outbox (records delivered twice) and one would take
// the other's lease for dead.
var ErrNodeIDTaken = errors.New("node id is held by another live node (a copied configuration?); give each node its own store.etcd.node_id")

// nodeInfo is the value of nodes/<id>, for operators (proxy cluster
// status): when this run of the node registered.
type nodeInfo struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// newSession grants this node a lease, kept alive until the store closes
// or etcd stops answering for longer than the TTL. Its registration, its
// outbox takeovers and its elections live under it, so all of them end
// together when the node dies.
func (s *Store) newSession() (*concurrency.Session, error) {
	ttl := int((s.opts.LeaseTTL + time.Second - 1) / time.Second)
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(s.bg))
	if err != nil {
		return nil, fail("grant the node lease", err)
	}
	return sess, nil
}

// register writes nodes/<id> under sess's lease. A key held by another
// lease is waited for as long as that lease could outlive a crashed
// earlier run of this node (the TTL); a key held longer belongs to a live
// node with the same id, and Open refuses. While another node delivers
// this node's outbox (takeover/<id>), it waits for that to end, so the
// outbox has one reader at a time.
func (s *Store) register(ctx context.Context, sess *concurrency.Session) error {
	v, _ := json.Marshal(nodeInfo{Node: s.opts.NodeID, Since: time.Now().UTC()})
	node, claim := s.keys.node(s.opts.NodeID), s.keys.takeover(s.opts.NodeID)
	begin := time.Now()
	for {
		cctx, cancel := s.call(ctx)
		resp, err := s.cli.Txn(cctx).
			If(clientv3.Compare(clientv3.CreateRevision(node), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(claim), "=", 0)).
			Then(clientv3.OpPut(node, string(v), clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(node), clientv3.OpGet(claim)).Commit()
		cancel()
		if err != nil {
			return fail("register the node", err)
		}
		if resp.Succeeded {
			return nil
		}
		nodeHeld := len(resp.Responses[0].GetResponseRange().Kvs) > 0
		waited := time.Since(begin)
		switch {
		case nodeHeld && waited > s.opts.LeaseTTL+time.Second:
			return fmt.Errorf("%w: node id %q: %w", tokenize.ErrStore, s.opts.NodeID, ErrNodeIDTaken)
		case !nodeHeld && waited > takeoverWait:
			return fmt.Errorf("%w: node id %q: another node still delivers this node's audit outbox after %v (is its audit trail failing?)",
				tokenize.ErrStore, s.opts.NodeID, takeoverWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: register node id %q: %w", tokenize.ErrStore, s.opts.NodeID, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// openSession starts this node's session and registers it.
func (s *Store) openSession(ctx context.Context) error {
	sess, err := s.newSession()
	if err != nil {
		return err
	}
	if err := s.register(ctx, sess); err != nil {
		s.revokeLease(sess)
		return err
	}
	s.session.Store(sess)
	s.wg.Add(1)
	go s.keepRegistered(sess)
	return nil
}

// keepRegistered renews the registration when the lease is lost while the
// store is open (etcd unreachable for longer than the TTL): meanwhile
// other nodes may have taken this node's outbox over, and the outbox is
// not listed (Outbox checks the registration) until this node holds its
// key again.
func (s *Store) keepRegistered(sess *concurrency.Session) {
	defer s.wg.Done()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-sess.Done():
		}
		if s.bg.Err() != nil {
			return // closing: Close revoked the lease
		}
		s.log.Warn("etcd lease of this node lost; registering again", "event", "etcd_lease_lost", "node", s.opts.NodeID)
		for s.bg.Err() == nil {
			next, err := s.newSession()
			if err == nil {
				if err = s.register(s.bg, next); err == nil {
					s.session.Store(next)
					sess = next
					s.log.Info("node registered again", "event", "etcd_lease_renewed", "node", s.opts.NodeID)
					s.republishPeer()
					break
				}
				s.revokeLease(next)
			}
			s.log.Warn("node not registered yet; retrying", "event", "etcd_lease_lost", "node", s.opts.NodeID, "err", err)
			sleep(s.bg, time.Second)
		}
	}
}

// lease returns this node's current lease (0 before Open registered it).
func (s *Store) lease() clientv3.LeaseID {
	if sess := s.session.Load(); sess != nil {
		return sess.Lease()
	}
	return clientv3.NoLease
}

// revoke ends this node's lease on Close: its registration, takeovers and
// elections end at once, and another node leads without waiting for the
// TTL.
func (s *Store) revoke() {
	if sess := s.session.Load(); sess != nil {
		s.revokeLease(sess)
	}
}

func (s *Store) revokeLease(sess *concurrency.Session) {
	sess.Orphan() // no more keep-alives
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, sess.Lease()); err != nil {
		s.log.Warn("etcd lease not revoked; it ends after its TTL", "event", "etcd_lease_revoke_failed", "err", err)
	}
}
