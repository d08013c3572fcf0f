package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// wipeTimeout bounds a Wipe: defragmentation rewrites each member's
// database file, which takes far longer than a request on a large map.
const wipeTimeout = 60 * time.Second

// Wipe implements tokenize.Store with what etcd offers: it compacts the
// key history to the current revision (old revisions of every key become
// unreadable) and defragments each member, which rewrites its bbolt file
// without the freed pages. It is best effort, and its bound is what the
// runbook states (doc.go, "Erasure"): the members' write-ahead logs and
// raft snapshots keep the erased ciphertext until etcd purges them.
func (s *Store) Wipe(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, wipeTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.schema())
	if err != nil {
		return fail("wipe: read revision", err)
	}
	rev := resp.Header.Revision
	if _, err := s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil &&
		!errors.Is(err, rpctypes.ErrCompacted) { // another node compacted further already
		return fail("wipe: compact", err)
	}
	var errs []error
	for _, ep := range s.cli.Endpoints() {
		if _, err := s.cli.Defragment(ctx, ep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: etcd wipe: compacted to revision %d, defragment failed: %w", tokenize.ErrStore, rev, err)
	}
	return nil
}
