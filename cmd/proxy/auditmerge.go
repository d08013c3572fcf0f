package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"slices"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// This file looks at the trails of a cluster together: refs delivered
// twice, tokens without a creation record, and the merged export.

// clusterScan is what one pass over every node's trail finds.
type clusterScan struct {
	refs    map[string][]string // outbox ref → the nodes whose trails deliver it, once per delivery
	created map[string]bool     // token local parts with a token.created record
}

// scanCluster reads every trail once.
func scanCluster(ctx context.Context, files map[string]string) (clusterScan, error) {
	s := clusterScan{refs: map[string][]string{}, created: map[string]bool{}}
	for _, node := range slices.Sorted(maps.Keys(files)) {
		err := scanTrail(ctx, files[node], func(r audit.Record) error {
			for _, ref := range compliance.RefsOf(r) {
				s.refs[ref] = append(s.refs[ref], node)
			}
			if r.Event == audit.TokenCreated {
				for _, t := range r.Tokens {
					s.created[tokenLocal(t)] = true
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// duplicates are the refs delivered more than once, sorted. When a node
// dies between delivering its outbox to its trail and deleting the
// entries, the node that takes its outbox over delivers them again under
// the same refs: one change, two records. That is the outbox's
// at-least-once delivery, not a forged record.
func (s clusterScan) duplicates() []string {
	var out []string
	for ref, nodes := range s.refs {
		if len(nodes) > 1 {
			out = append(out, ref)
		}
	}
	slices.Sort(out)
	return out
}

// uncreatedTokens lists the map's tokens (live or erased) whose creation
// record no trail holds: a token made without an audit record, or a
// record deleted from a trail. Only keys are read, so no data key is
// needed.
func uncreatedTokens(ctx context.Context, db tokenize.Store, created map[string]bool) (n int, missing []string, err error) {
	err = db.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(local string, _ []byte) (bool, error) {
			n++
			if !created[local] {
				missing = append(missing, local)
			}
			return true, ctx.Err()
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read the map's tokens: %w", err)
	}
	return n, missing, nil
}

// maxListed bounds the refs and tokens a report lists one per line.
const maxListed = 100

func printDuplicates(w io.Writer, s clusterScan) {
	dups := s.duplicates()
	fmt.Fprintf(w, "duplicates: %d ref(s) delivered more than once (not a failure: a node that died between "+
		"delivering and deleting its outbox has those records delivered again, under the same refs, by the node that took it over)\n", len(dups))
	for i, ref := range dups {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more\n", len(dups)-maxListed)
			break
		}
		fmt.Fprintf(w, "  ref %s: %d deliveries, nodes %v\n", ref, len(s.refs[ref]), s.refs[ref])
	}
}

func printUncreated(w io.Writer, f tokenize.Format, n int, missing []string) {
	if len(missing) == 0 {
		fmt.Fprintf(w, "creations: OK, each of the map's %d token(s) has its creation record in a trail\n", n)
		return
	}
	fmt.Fprintf(w, "creations: FAILED, %d of the map's %d token(s) have no creation record in any trail\n", len(missing), n)
	for i, local := range missing {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more\n", len(missing)-maxListed)
			break
		}
		fmt.Fprintf(w, "  token %s: no creation record in any trail\n", f.Address(local))
	}
}

// trailLine is one record of a node's trail with the line it was read from.
type trailLine struct {
	node string
	rec  audit.Record
	line []byte
}

var errStopScan = errors.New("stop")

// trailLines yields a trail's records in file order.
func trailLines(ctx context.Context, node, path string) iter.Seq2[trailLine, error] {
	return func(yield func(trailLine, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(trailLine{}, fmt.Errorf("read trail: %w", err))
			return
		}
		defer f.Close()
		err = audit.Scan(f, func(r audit.Record, line []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !yield(trailLine{node: node, rec: r, line: slices.Clone(line)}, nil) {
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			yield(trailLine{}, fmt.Errorf("trail of node %s: %w", node, err))
		}
	}
}

// mergeTrails yields the records of every trail in time order (a k-way
// merge: each trail keeps its own order, which is its chain's), ties by
// node id, and leaves out a record whose refs were all delivered before:
// the second delivery of one change. dups counts what it left out.
func mergeTrails(ctx context.Context, files map[string]string, dups *int) iter.Seq2[trailLine, error] {
	return func(yield func(trailLine, error) bool) {
		type cursor struct {
			next func() (trailLine, error, bool)
			cur  trailLine
		}
		var cs []*cursor
		for _, node := range slices.Sorted(maps.Keys(files)) {
			next, stop := iter.Pull2(trailLines(ctx, node, files[node]))
			defer stop()
			cs = append(cs, &cursor{next: next})
		}
		advance := func(c *cursor) (bool, error) {
			l, err, ok := c.next()
			c.cur = l
			return ok && err == nil, err
		}
		var live []*cursor
		for _, c := range cs {
			ok, err := advance(c)
			if err != nil {
				yield(trailLine{}, err)
				return
			}
			if ok {
				live = append(live, c)
			}
		}
		seen := map[string]bool{}
		for len(live) > 0 {
			i := earliest(live, func(c *cursor) trailLine { return c.cur })
			l := live[i].cur
			if !delivered(seen, l.rec) {
				if !yield(l, nil) {
					return
				}
			} else {
				*dups++
			}
			ok, err := advance(live[i])
			if err != nil {
				yield(trailLine{}, err)
				return
			}
			if !ok {
				live = slices.Delete(live, i, i+1)
			}
		}
	}
}

// earliest is the index of the cursor whose record comes first: by time,
// then by node id (cursors are in node order, so the first wins a tie).
func earliest[C any](cs []C, cur func(C) trailLine) int {
	best := 0
	for i := 1; i < len(cs); i++ {
		if cur(cs[i]).rec.Time.Before(cur(cs[best]).rec.Time) {
			best = i
		}
	}
	return best
}

// delivered reports whether every ref a record names was seen before,
// and notes its refs. A record without refs is never a duplicate.
func delivered(seen map[string]bool, r audit.Record) bool {
	refs := compliance.RefsOf(r)
	dup := len(refs) > 0
	for _, ref := range refs {
		if !seen[ref] {
			dup = false
			seen[ref] = true
		}
	}
	return dup
}
