package etcdstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/vault"
)

// WrappedKeys implements vault.Store: keys/<purpose>/<version>.
func (s *Store) WrappedKeys(ctx context.Context) ([]vault.WrappedKey, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.wrapped, clientv3.WithPrefix())
	if err != nil {
		return nil, fail("read wrapped keys", err)
	}
	out := make([]vault.WrappedKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.keys.wrapped)
		purpose, ver, ok := strings.Cut(name, "/")
		v, err := strconv.ParseUint(ver, 10, 32)
		if !ok || err != nil {
			return nil, fail("read wrapped keys", fmt.Errorf("key %s is not <purpose>/<version>", kv.Key))
		}
		out = append(out, vault.WrappedKey{Purpose: vault.Purpose(purpose), Version: uint32(v), Wrapped: kv.Value})
	}
	return out, nil
}

// PutWrappedKeys implements vault.Store: all keys in one transaction.
func (s *Store) PutWrappedKeys(ctx context.Context, keys []vault.WrappedKey) error {
	if s.closed.Load() {
		return errClosed
	}
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpPut(fmt.Sprintf("%s%s/%d", s.keys.wrapped, k.Purpose, k.Version), string(k.Wrapped))
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.cli.Txn(cctx).Then(ops...).Commit(); err != nil {
		return fail("write wrapped keys", err)
	}
	return nil
}

// CreateWrappedKeys implements vault.KeyCreator: the keys are written only
// if none of their versions exists yet (CreateRevision 0), in one Txn.
func (s *Store) CreateWrappedKeys(ctx context.Context, keys []vault.WrappedKey) (bool, error) {
	if s.closed.Load() {
		return false, errClosed
	}
	cmps := make([]clientv3.Cmp, len(keys))
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		name := fmt.Sprintf("%s%s/%d", s.keys.wrapped, k.Purpose, k.Version)
		cmps[i] = clientv3.Compare(clientv3.CreateRevision(name), "=", 0)
		ops[i] = clientv3.OpPut(name, string(k.Wrapped))
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Txn(cctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fail("create wrapped keys", err)
	}
	return resp.Succeeded, nil
}
