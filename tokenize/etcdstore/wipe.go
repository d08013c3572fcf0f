package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
//
// With RBAC only etcd's root may compact and defragment, and a node's
// user is not root (its role covers the map's prefix alone): Wipe then
// schedules the work instead (scheduleWipe).
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
	_, err = s.cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return s.scheduleWipe(ctx, rev)
	case err != nil && !errors.Is(err, rpctypes.ErrCompacted): // another node compacted further already
		return fail("wipe: compact", err)
	}
	var errs []error
	for _, ep := range s.cli.Endpoints() {
		_, err := s.cli.Defragment(ctx, ep)
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			return s.scheduleWipe(ctx, rev)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: etcd wipe: compacted to revision %d, defragment failed: %w", tokenize.ErrStore, rev, err)
	}
	return nil
}

// scheduleWipe asks the members' maintenance job to compact and
// defragment: it writes <prefix>wipe (inside the prefix, so the node's
// role allows it; one key for every tenant, so the job reads one key),
// and the job on each appliance (deploy/etcd/etcd-maintain.sh, run by a
// timer with a root certificate the proxy never holds) compacts to the
// revision it reads once that key changed, and defragments its member.
// The value (the revision this node read) is for the operator: the job
// compacts to the current revision, which covers concurrent requests. The erasure is committed either way; until the job runs, the
// erased record's old revision stays readable to root and on disk.
func (s *Store) scheduleWipe(ctx context.Context, rev int64) error {
	if _, err := s.cli.Put(ctx, s.keys.wipeRequest(), strconv.FormatInt(rev, 10)); err != nil {
		return fail("wipe: schedule", err)
	}
	s.log.Info("etcd compaction and defragmentation scheduled for the members' maintenance job (this node's user may not run them)",
		"event", "etcd_wipe_scheduled", "revision", rev)
	return nil
}
