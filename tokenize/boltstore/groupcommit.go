package boltstore

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// groupCommit shares one write transaction, and so one pair of fsyncs,
// among all callers that arrive while the previous commit is in flight.
//
// It replaces bbolt's db.Batch for token creation. Batch detaches a batch
// when its timer fires, not when the writer lock is free, so under load
// several small batches queue behind the running commit: measured here,
// 50 concurrent callers shared a commit ~6 at a time (3.5k tokens/s). A
// group commit takes everything queued the moment the writer is free, and
// a lone caller commits at once instead of waiting for a timer.
type groupCommit struct {
	db      *bolt.DB
	mu      sync.Mutex
	queue   []*commitCall
	running bool
	last    int // size of the previous commit
}

// siblingWait bounds how long a commit waits for the callers of the
// previous commit to come back, as PostgreSQL's commit_delay does: they
// were all woken at once and re-arrive within a fraction of a millisecond,
// and an fsync costs more than that wait.
const siblingWait = 300 * time.Microsecond

type commitCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// do runs fn in a shared write transaction and returns once that
// transaction is durable. fn may run more than once: when a shared
// transaction fails, each of its calls is retried alone, so one failing
// caller cannot fail the others.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	c := &commitCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.drain()
	}
	return <-c.done
}

// drain commits queued calls until the queue is empty. The caller that
// found no commit running does this work; the others only wait.
func (g *groupCommit) drain() {
	for {
		g.awaitSiblings()
		g.mu.Lock()
		calls := g.queue
		g.queue = nil
		if len(calls) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.last = len(calls)
		g.mu.Unlock()
		g.commit(calls)
	}
}

// awaitSiblings waits, only under concurrency, until half as many calls
// as last time are queued or siblingWait has passed. A lone caller (last
// commit of one) never waits.
func (g *groupCommit) awaitSiblings() {
	deadline := time.Now().Add(siblingWait)
	for {
		g.mu.Lock()
		n, want := len(g.queue), g.last/2
		g.mu.Unlock()
		if g.last <= 1 || n >= want || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func (g *groupCommit) commit(calls []*commitCall) {
	err := g.update(func(tx *bolt.Tx) error {
		for _, c := range calls {
			if err := safeCall(c.fn, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(calls) == 1 {
		for _, c := range calls {
			c.done <- err
		}
		return
	}
	for _, c := range calls {
		c.done <- g.update(func(tx *bolt.Tx) error { return safeCall(c.fn, tx) })
	}
}

// update is bbolt's Update with its commit guarded too: writing the
// freelist or splitting a damaged page panics inside bbolt, after fn.
func (g *groupCommit) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: commit on a damaged page: %v", tokenize.ErrStore, r)
		}
	}()
	return g.db.Update(fn)
}

// safeCall turns a panic in fn (a damaged page read by assertion, or a
// fault past the mapped file) into an error for that caller alone.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic in token transaction (damaged page?): %v", tokenize.ErrStore, r)
		}
	}()
	return fn(tx)
}
