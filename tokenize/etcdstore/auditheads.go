package etcdstore

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Each node publishes its audit trail's signed head under
// audit/heads/<node id> (DESIGN.md, Compliance and audit), so that a
// verifier holding the nodes' trails detects one missing or cut short.
// The value is opaque here: the audit package owns its format.

func (l layout) auditHeads() string { return l.base + "audit/heads/" }

// PutAuditHead publishes this node's head.
func (s *Store) PutAuditHead(ctx context.Context, value []byte) error {
	if s.closed.Load() {
		return errClosed
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.cli.Put(cctx, s.keys.auditHeads()+s.opts.NodeID, string(value)); err != nil {
		return fail("publish audit head", err)
	}
	return nil
}

// OwnAuditHead returns this node's published head, nil if none.
func (s *Store) OwnAuditHead(ctx context.Context) ([]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.auditHeads()+s.opts.NodeID)
	if err != nil {
		return nil, fail("read audit head", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// AuditHeads returns every node's published head, by node id.
func (s *Store) AuditHeads(ctx context.Context) (map[string][]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.auditHeads(), clientv3.WithPrefix())
	if err != nil {
		return nil, fail("read audit heads", err)
	}
	heads := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		heads[strings.TrimPrefix(string(kv.Key), s.keys.auditHeads())] = kv.Value
	}
	return heads, nil
}
