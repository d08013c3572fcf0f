package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// freshCheckInterval is how often the node confirms its freshness: a
// quarter of the default bound, so that one slow or lost check does not
// make a healthy node stale.
const freshCheckInterval = 250 * time.Millisecond

// progressPoll is how long one wait for the watch's progress lasts before
// progress is requested again: a request sent before the watch stream
// existed is lost.
const progressPoll = 50 * time.Millisecond

var errNoWatch = errors.New("no watch open: other nodes' changes would not reach the caches")

// freshness is what the checker knows (DESIGN.md, Store): the node is
// fresh while, within Options.Freshness, a linearizable read returned the
// cluster's revision and every open watch has since delivered the changes
// up to that revision. Then every change committed before that read has
// reached the map's caches, so an erasure anywhere stops being served
// here within Freshness plus one check.
type freshness struct {
	mu        sync.Mutex
	opened    time.Time
	confirmed time.Time     // when the last confirmed read was sent; zero: never
	cause     error         // why the last check did not confirm
	watches   map[int]int64 // open watches: revision each has delivered up to
	nextWatch int           // id of the next watch
	advanced  chan struct{} // closed and replaced when a watch progresses
	kick      chan struct{} // asks the checker for a check now
}

func newFreshness() *freshness {
	return &freshness{opened: time.Now(), watches: map[int]int64{}, advanced: make(chan struct{}),
		kick: make(chan struct{}, 1)}
}

// addWatch registers a watch that has delivered nothing yet.
func (f *freshness) addWatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextWatch
	f.nextWatch++
	f.watches[id] = 0
	return id
}

func (f *freshness) removeWatch(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.watches, id)
}

// advance notes that watch id has delivered every change up to rev.
func (f *freshness) advance(id int, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.watches[id]; ok && rev > cur {
		f.watches[id] = rev
		close(f.advanced)
		f.advanced = make(chan struct{})
	}
}

// caughtUp reports whether every open watch has delivered up to rev, and
// returns a channel closed at the next progress.
func (f *freshness) caughtUp(rev int64) (bool, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.watches) == 0 {
		return false, f.advanced, errNoWatch
	}
	low := rev
	for _, r := range f.watches {
		low = min(low, r)
	}
	return low >= rev, f.advanced, nil
}

func (f *freshness) confirm(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at.After(f.confirmed) {
		f.confirmed = at
	}
	f.cause = nil
}

func (f *freshness) fail(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cause = cause
}

// askCheck makes the checker run now (a watch opened), without waiting.
func (f *freshness) askCheck() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// state returns the last confirmation (or the store's opening, when there
// was none) and the last check's failure.
func (f *freshness) state() (time.Time, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.confirmed.IsZero() {
		return f.opened, false, f.cause
	}
	return f.confirmed, true, f.cause
}

// Fresh implements tokenize.Freshness. It only reads the checker's state:
// a lost cluster makes it stale once Freshness has passed since the last
// confirmed read, however long the read under way takes to fail.
func (s *Store) Fresh() error {
	if s.closed.Load() {
		return errClosed
	}
	at, ever, cause := s.fresh.state()
	age := time.Since(at)
	if ever && age <= s.opts.Freshness {
		return nil
	}
	since := at
	if ever {
		since = at.Add(s.opts.Freshness)
	}
	if cause == nil {
		cause = fmt.Errorf("no freshness check confirmed for %s", age.Round(time.Millisecond))
	}
	return &tokenize.StaleError{Since: since, Cause: cause}
}

// freshnessAge is how long ago the last confirmed read was sent (since
// the store opened, when none was), for the metrics.
func (s *Store) freshnessAge() time.Duration {
	at, _, _ := s.fresh.state()
	return time.Since(at)
}

// checkFreshness confirms freshness every freshCheckInterval, and at once
// when a watch opens, until the store closes.
func (s *Store) checkFreshness() {
	t := time.NewTicker(freshCheckInterval)
	defer t.Stop()
	for {
		s.checkOnce()
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		case <-s.fresh.kick:
		}
	}
}

// checkOnce reads the cluster's revision linearizably and waits, until
// that read is Freshness old, for the watches to deliver up to it.
func (s *Store) checkOnce() {
	sent := time.Now()
	deadline := sent.Add(s.opts.Freshness)
	rev, err := s.clusterRevision(deadline)
	if err == nil {
		err = s.awaitProgress(rev, deadline)
	}
	if err != nil {
		s.fresh.fail(err)
		return
	}
	s.fresh.confirm(sent)
}

// clusterRevision is the cluster's current revision by a linearizable
// read (a quorum round through the leader, so a member cut off from the
// quorum cannot answer it). A read slower than Freshness could not
// confirm anything, so that bounds it as well as RequestTimeout.
func (s *Store) clusterRevision(deadline time.Time) (int64, error) {
	ctx, cancel := context.WithDeadline(s.bg, deadline)
	defer cancel()
	ctx, cancel2 := s.call(ctx)
	defer cancel2()
	begin := time.Now()
	resp, err := s.cli.Get(ctx, s.keys.schema(), clientv3.WithCountOnly())
	s.metrics.observe(opRevision, begin)
	if err != nil {
		return 0, fmt.Errorf("linearizable revision read: %w", err)
	}
	return resp.Header.Revision, nil
}

// awaitProgress waits until every open watch has delivered up to rev,
// asking etcd for progress notifications (RequestProgress: etcd answers
// once the stream's watchers have caught up, with the revision they
// reached) until deadline.
func (s *Store) awaitProgress(rev int64, deadline time.Time) error {
	// The request must carry the watches' metadata (WithRequireLeader)
	// to reach their gRPC stream, and a context that lives as long as
	// the store: a request sent before the watch opened creates the
	// stream with it, and the watch then joins that stream.
	stream := clientv3.WithRequireLeader(s.bg)
	ctx, cancel := context.WithDeadline(s.bg, deadline)
	defer cancel()
	for {
		ok, advanced, err := s.fresh.caughtUp(rev)
		if ok || err != nil {
			return err
		}
		if err := s.cli.RequestProgress(stream); err != nil {
			return fmt.Errorf("watch progress request: %w", err)
		}
		t := time.NewTimer(progressPoll)
		select {
		case <-advanced:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("watch behind revision %d after %s: %w", rev, s.opts.Freshness, ctx.Err())
		}
		t.Stop()
	}
}
