package etcdstore

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// committers is how many shared transactions may be in flight at once:
// two keep the cluster busy while the next batch gathers.
const committers = 2

// A commit is one Update's compares and writes, waiting for a shared Txn.
type commit struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	keys []string // the keys written: one Txn may not write a key twice
	// orElse, when set, is a key the commit reads when its compares fail
	// (CreateToken: the token present instead), in the same Txn.
	orElse string
	done   chan commitResult
}

type commitResult struct {
	ok  bool  // the compares held and the writes are committed
	rev int64 // the commit's revision
	// present is orElse's value when the compares failed (nil: absent).
	present []byte
	err     error
}

// groupCommit joins the commits of concurrent Updates into one etcd Txn
// (within max-txn-ops), as raft would otherwise carry, replicate and
// apply one entry per new token: measured on two cores, new tokens from
// 50 callers went from about 2,400/s with a Txn each to the figures in
// the package's benchmark. A shared Txn whose compares failed is retried
// commit by commit, so that one conflict does not make the others run
// their fn again.
type groupCommit struct {
	s     *Store
	queue chan *commit // unbuffered: a commit is either taken or refused
}

func (s *Store) startCommitters() {
	g := &groupCommit{s: s, queue: make(chan *commit)}
	s.commits = g
	for range committers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			g.run()
		}()
	}
}

// do commits c, alone or with others, and returns the outcome.
func (g *groupCommit) do(c *commit) commitResult {
	c.done = make(chan commitResult, 1)
	select {
	case g.queue <- c:
	case <-g.s.bg.Done():
		return commitResult{err: errClosed}
	}
	return <-c.done // answered always: the committer owns c now
}

func (g *groupCommit) run() {
	var carry *commit
	for {
		first := carry
		if first == nil {
			select {
			case first = <-g.queue:
			case <-g.s.bg.Done():
				return
			}
		}
		var batch []*commit
		batch, carry = g.gather(first)
		g.send(batch)
	}
}

// gather adds to first the commits waiting now, while they fit one Txn.
// The first that does not fit is returned, to start the next batch.
func (g *groupCommit) gather(first *commit) ([]*commit, *commit) {
	batch := []*commit{first}
	ncmp, nops := len(first.cmps), len(first.ops)
	written := map[string]bool{}
	for _, k := range first.keys {
		written[k] = true
	}
	for {
		var c *commit
		select {
		case c = <-g.queue:
		default:
			return batch, nil
		}
		if ncmp+len(c.cmps) > g.s.opts.MaxTxnOps || nops+len(c.ops) > g.s.opts.MaxTxnOps || writesAny(written, c.keys) {
			return batch, c
		}
		ncmp, nops = ncmp+len(c.cmps), nops+len(c.ops)
		for _, k := range c.keys {
			written[k] = true
		}
		batch = append(batch, c)
	}
}

func writesAny(written map[string]bool, keys []string) bool {
	for _, k := range keys {
		if written[k] {
			return true
		}
	}
	return false
}

// send commits a batch in one Txn; if its compares fail and it holds more
// than one commit, each is tried alone.
func (g *groupCommit) send(batch []*commit) {
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, c := range batch {
		cmps, ops = append(cmps, c.cmps...), append(ops, c.ops...)
	}
	if len(batch) == 1 {
		c := batch[0]
		c.done <- g.txn(c.cmps, c.ops, c.orElse)
		return
	}
	r := g.txn(cmps, ops, "")
	if r.err != nil || r.ok {
		for _, c := range batch {
			c.done <- r
		}
		return
	}
	var wg sync.WaitGroup
	for _, c := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.done <- g.txn(c.cmps, c.ops, c.orElse)
		}()
	}
	wg.Wait()
}

// txn runs one Txn; with orElse set, a failed one reads that key.
func (g *groupCommit) txn(cmps []clientv3.Cmp, ops []clientv3.Op, orElse string) commitResult {
	ctx, cancel := g.s.call(context.Background())
	defer cancel()
	defer g.s.metrics.observe(opCommit, time.Now())
	t := g.s.cli.Txn(ctx).If(cmps...).Then(ops...)
	if orElse != "" {
		t = t.Else(clientv3.OpGet(orElse))
	}
	resp, err := t.Commit()
	if err != nil {
		return commitResult{err: fail("txn", err)}
	}
	r := commitResult{ok: resp.Succeeded, rev: resp.Header.Revision}
	if !resp.Succeeded && orElse != "" && len(resp.Responses) == 1 {
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
			r.present = kvs[0].Value
		}
	}
	return r
}
