package main

import (
	"context"
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

// uncreatedTokens lists the map's tokens whose creation record no trail
// holds (compliance.UncreatedTokens, which the API's verify shares).
func uncreatedTokens(ctx context.Context, db tokenize.Store, created map[string]bool) (n int, missing []string, err error) {
	return compliance.UncreatedTokens(ctx, db, created)
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

// mergeTrails yields the records of every trail merged as the compliance
// API merges a cluster's trails (compliance.Merge: each trail in its own
// order, interleaved by commit revision or time, ties by node id), and
// leaves out a record whose refs were all delivered before: the second
// delivery of one change. dups counts what it left out.
func mergeTrails(ctx context.Context, files map[string]string, dups *int) iter.Seq2[trailLine, error] {
	return func(yield func(trailLine, error) bool) {
		var srcs []compliance.TrailSource
		for _, node := range slices.Sorted(maps.Keys(files)) {
			f, err := os.Open(files[node])
			if err != nil {
				yield(trailLine{}, fmt.Errorf("read trail: %w", err))
				return
			}
			defer f.Close()
			srcs = append(srcs, compliance.TrailSource{Node: node, R: f})
		}
		for r, err := range compliance.Merge(ctx, srcs, audit.Query{}, dups) {
			if !yield(trailLine{node: r.Node, rec: r.Rec, line: r.Line}, err) || err != nil {
				return
			}
		}
	}
}
