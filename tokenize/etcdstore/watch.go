package etcdstore

import (
	"context"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchRetry is the pause before a broken watch is opened again.
const watchRetry = 250 * time.Millisecond

// Watch implements tokenize.Store: the local parts of tokens that changed
// (erased, renamed, re-encrypted, touched) in the cluster, reopening the
// watch where it broke off. Creations are not reported: a new token
// invalidates no cache entry. Nor, as far as the store knows them, are
// this store's own commits: the map forgets those itself. When etcd
// compacted events away before they were read, "" is sent: every cache
// entry may be stale (the map's forget clears its address cache on any
// value). The channel closes when ctx ends or the store closes.
//
// The watch's progress is what makes the store fresh (fresh.go): until
// one is open, Fresh reports the store stale.
func (s *Store) Watch(ctx context.Context) <-chan string {
	out := make(chan string, 64)
	id := s.fresh.addWatch()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer s.fresh.removeWatch(id)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { // the store's Close ends the watch too
			select {
			case <-s.bg.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		s.watch(ctx, id, out)
	}()
	s.fresh.askCheck()
	return out
}

// watch follows the token keys from the current revision on. It starts
// from a revision it read rather than from "now", so that a watch that
// breaks before its first response resumes without a gap.
func (s *Store) watch(ctx context.Context, id int, out chan<- string) {
	next := int64(0) // 0: from now, if the revision cannot be read
	if rev, err := s.clusterRevision(time.Now().Add(s.opts.RequestTimeout)); err == nil {
		next = rev + 1
	}
	for ctx.Err() == nil {
		var err error
		next, err = s.watchOnce(ctx, id, next, out)
		if ctx.Err() != nil {
			return
		}
		s.metrics.restarts.Inc()
		if err != nil {
			s.log.Warn("etcd watch broke; reopening", "event", "etcd_watch_restart", "err", err)
			sleep(ctx, watchRetry)
		}
	}
}

// watchOnce runs one etcd watch from revision next and returns the
// revision to resume from. WithRequireLeader ends it when its member loses
// the leader, so a partitioned member cannot keep the map's caches quiet.
//
// Progress (fresh.go) is noted from the revision the watch resumes at and
// from progress notifications, which etcd sends once the stream's
// watchers have caught up, with the revision they reached: an event batch of a watch still catching up after a
// restart may carry the current revision in its header while older events
// are still on their way.
func (s *Store) watchOnce(ctx context.Context, id int, next int64, out chan<- string) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithProgressNotify()}
	if next > 0 {
		opts = append(opts, clientv3.WithRev(next))
		// Everything before next is delivered (or, at the first start,
		// predates the caches). etcd answers no progress request for a
		// watch that starts after its current revision, so without this
		// an idle cluster would leave the node stale.
		s.fresh.advance(id, next-1)
	}
	for resp := range s.cli.Watch(wctx, s.keys.tokens, opts...) {
		if resp.CompactRevision != 0 {
			send(ctx, out, "") // events lost: everything may have changed
			return resp.CompactRevision, nil
		}
		if err := resp.Err(); err != nil {
			return next, err
		}
		for _, ev := range resp.Events {
			if ev.IsCreate() || s.own.has(ev.Kv.ModRevision) {
				continue
			}
			if !send(ctx, out, strings.TrimPrefix(string(ev.Kv.Key), s.keys.tokens)) {
				return next, nil
			}
		}
		next = resp.Header.Revision + 1
		if resp.IsProgressNotify() {
			s.fresh.advance(id, resp.Header.Revision)
		}
	}
	return next, ctx.Err()
}

func send(ctx context.Context, out chan<- string, local string) bool {
	select {
	case out <- local:
		return true
	case <-ctx.Done():
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ownRevisions remembers the revisions of this store's recent commits, so
// that the watch does not report them back. A commit whose event arrives
// before its reply is reported anyway: a needless cache drop, not a
// stale entry.
type ownRevisions struct {
	mu   sync.Mutex
	set  map[int64]bool
	ring [1024]int64
	next int
}

func (o *ownRevisions) add(rev int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set == nil {
		o.set = map[int64]bool{}
	}
	delete(o.set, o.ring[o.next])
	o.ring[o.next] = rev
	o.set[rev] = true
	o.next = (o.next + 1) % len(o.ring)
}

func (o *ownRevisions) has(rev int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.set[rev]
}
