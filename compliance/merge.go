package compliance

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// This file merges the trails of a cluster's nodes into one sequence
// (DESIGN.md, Compliance and audit): each node keeps its own chain, and a
// reader on any node sees every node's records in one order.

// TrailSource is one node's trail (or the records of it that a query
// selected), as JSON lines in the trail's order.
type TrailSource struct {
	Node string
	R    io.Reader
}

// MergedRecord is a record of the merge with the node whose trail holds
// it and its line as written (so that a reader can verify it).
type MergedRecord struct {
	Node string
	Rec  audit.Record
	Line []byte
}

var errStopMerge = errors.New("stop")

// records yields a source's records that q selects (Limit aside), in order.
func (s TrailSource) records(ctx context.Context, q audit.Query) iter.Seq2[MergedRecord, error] {
	return func(yield func(MergedRecord, error) bool) {
		err := audit.Scan(s.R, func(r audit.Record, line []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !q.Match(&r) {
				return nil
			}
			if !yield(MergedRecord{Node: s.Node, Rec: r, Line: append([]byte(nil), line...)}, nil) {
				return errStopMerge
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopMerge) {
			yield(MergedRecord{}, &trailError{node: s.Node, err: err})
		}
	}
}

// trailError names the node whose trail could not be read.
type trailError struct {
	node string
	err  error
}

func (e *trailError) Error() string { return "trail of node " + e.node + ": " + e.err.Error() }
func (e *trailError) Unwrap() error { return e.err }

// Merge yields the records q selects from every source, each source in its
// own (chain) order, the sources interleaved in etcd revision order: two
// records that each carry an outbox ref (token.created, token.expired)
// are ordered by the revision of the commit that made them, which is the
// cluster's own order of the map's changes; any other two by when what
// they record happened (eventTime), ties by source order. A record whose refs were all delivered before is left
// out: a node that died between delivering its outbox and deleting it has
// those records delivered again, under the same refs, by the node that
// took the outbox over. dups counts what was left out; q.Limit bounds
// what is yielded.
func Merge(ctx context.Context, srcs []TrailSource, q audit.Query, dups *int) iter.Seq2[MergedRecord, error] {
	return func(yield func(MergedRecord, error) bool) {
		type cursor struct {
			next func() (MergedRecord, error, bool)
			cur  MergedRecord
		}
		var live []*cursor
		for _, s := range srcs {
			next, stop := iter.Pull2(s.records(ctx, q))
			defer stop()
			c := &cursor{next: next}
			r, err, ok := next()
			if err != nil {
				yield(MergedRecord{}, err)
				return
			}
			if ok {
				c.cur = r
				live = append(live, c)
			}
		}
		seen, n := map[string]bool{}, 0
		for len(live) > 0 {
			i := 0
			for j := 1; j < len(live); j++ {
				if before(live[j].cur.Rec, live[i].cur.Rec) {
					i = j
				}
			}
			if !delivered(seen, live[i].cur.Rec) {
				if !yield(live[i].cur, nil) {
					return
				}
				if n++; q.Limit > 0 && n >= q.Limit {
					return
				}
			} else if dups != nil {
				*dups++
			}
			r, err, ok := live[i].next()
			switch {
			case err != nil:
				yield(MergedRecord{}, err)
				return
			case ok:
				live[i].cur = r
			default:
				live = append(live[:i], live[i+1:]...)
			}
		}
	}
}

// before orders two records of different trails: by the etcd revision of
// their outbox refs when both carry one, else by when what they record
// happened (eventTime).
func before(a, b audit.Record) bool {
	ra, rb := revisionOf(a), revisionOf(b)
	if ra > 0 && rb > 0 {
		return ra < rb
	}
	return eventTime(a).Before(eventTime(b))
}

// eventTime is when what a record tells happened: for a change of the map
// delivered from the outbox, its commit ("committed", MapAudit), which
// may be well before the record reached the trail (the outbox lingers,
// a dead node's outbox waits for its takeover); else the record's time.
func eventTime(r audit.Record) time.Time {
	if c := r.Detail["committed"]; c != "" && len(RefsOf(r)) > 0 {
		if t, err := time.Parse(time.RFC3339Nano, c); err == nil {
			return t
		}
	}
	return r.Time
}

// sortByEvent orders a merge's records by when they happened (before),
// keeping the merge's order among equals: an export lists a subject's
// history, in which a token's creation comes before its first use even
// when its record reached its trail after that use's.
func sortByEvent(recs []MergedRecord) {
	slices.SortStableFunc(recs, func(a, b MergedRecord) int {
		switch {
		case before(a.Rec, b.Rec):
			return -1
		case before(b.Rec, a.Rec):
			return 1
		}
		return 0
	})
}

// revisionOf is the etcd create revision of a record's first outbox ref
// (etcdstore: <revision, 20 digits>-<txn id>-<index>), 0 when it has
// none or the ref is another store's (bbolt's refs are not revisions).
func revisionOf(r audit.Record) int64 {
	refs := RefsOf(r)
	if len(refs) == 0 {
		return 0
	}
	digits, _, ok := strings.Cut(refs[0], "-")
	if !ok || len(digits) != 20 {
		return 0
	}
	rev, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0
	}
	return rev
}

// delivered reports whether every ref a record names was seen before,
// and notes its refs. A record without refs is never a duplicate.
func delivered(seen map[string]bool, r audit.Record) bool {
	refs := RefsOf(r)
	dup := len(refs) > 0
	for _, ref := range refs {
		if !seen[ref] {
			dup = false
			seen[ref] = true
		}
	}
	return dup
}
