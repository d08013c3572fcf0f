package compliance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// TestMergePages: two nodes' pages, each newest first, merge newest
// first without reordering a node's records; the next page starts below
// what each node showed, a node with nothing shown starts at its newest
// record read, a node not read keeps its position.
func TestMergePages(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rec := func(seq uint64, min int) audit.Record {
		return audit.Record{Seq: seq, Time: t0.Add(time.Duration(min) * time.Minute)}
	}
	pages := map[string][]audit.Record{
		"a": {rec(9, 50), rec(8, 30), rec(7, 10)},
		"b": {rec(4, 40), rec(3, 20)},
		"c": {rec(2, 5)},
	}
	tests := []struct {
		limit int
		want  string
		next  string
	}{
		{1, "a9", "map[a:9 b:5 c:3 d:7]"},
		{3, "a9 b4 a8", "map[a:8 b:4 c:3 d:7]"},
		{6, "a9 b4 a8 b3 a7 c2", "<nil>"},
	}
	for _, tc := range tests {
		p := mergePages(pages, []string{"a", "b", "c"}, PageCursor{"d": 7}, tc.limit, []TrailState{{Node: "a"}, {Node: "b"}})
		got := ""
		for i, r := range p.Records {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s%d", r.Node, r.Seq)
		}
		next := "<nil>"
		if p.Next != nil {
			next = fmt.Sprint(map[string]uint64(p.Next))
		}
		if got != tc.want || next != tc.next {
			t.Errorf("limit %d: %s, next %s; want %s, next %s", tc.limit, got, next, tc.want, tc.next)
		}
	}
}

// TestAuditPageCluster: node b pages through its own and a's records
// (read through a's page endpoint), two at a time, newest first: every
// record of both trails once, each node's in its order, c (down) named
// missing.
func TestAuditPageCluster(t *testing.T) {
	p := newClusterPair(t)
	ctx := audit.WithActor(context.Background(), "system:test")
	for i := range 3 {
		for _, e := range []*testEngine{p.a, p.b} {
			if _, err := e.trail.Append(ctx, audit.Record{Event: audit.KeysRotated, Outcome: "ok", Count: i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	auditor := audit.WithActor(context.Background(), "principal:sam")
	seen := map[string]uint64{} // node → the last seq seen
	var prev *PagedRecord
	at := PageCursor(nil)
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatal("paging does not end")
		}
		pg, err := p.svcB.AuditPageCluster(auditor, audit.Query{}, at, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Trails) != 3 || pg.Trails[2].Node != "c" || pg.Trails[2].Missing == "" || pg.Trails[1].Missing != "" {
			t.Fatalf("trails = %+v, want b and a read, c missing", pg.Trails)
		}
		for _, r := range pg.Records {
			if last, ok := seen[r.Node]; ok && r.Seq != last-1 {
				t.Errorf("node %s: seq %d after %d, want each record once, newest first", r.Node, r.Seq, last)
			}
			if prev != nil && prev.Node != r.Node && before(prev.Record, r.Record) {
				t.Errorf("%s #%d (%s) after %s #%d (%s): not newest first", r.Node, r.Seq, r.Time, prev.Node, prev.Seq, prev.Time)
			}
			seen[r.Node] = r.Seq
			prev = &r
		}
		if pg.Next == nil {
			break
		}
		at = pg.Next
	}
	if seen["a"] != 1 || seen["b"] != 1 {
		t.Errorf("the pages end at %v, want both trails to their first record", seen)
	}
}

// TestAuditRecordOn: node b reads one record of a's trail through a's
// page endpoint, and its own from its file; a record no trail holds is
// not found; c, not live, cannot be read now.
func TestAuditRecordOn(t *testing.T) {
	p := newClusterPair(t)
	auditor := audit.WithActor(context.Background(), "principal:sam")
	first := records(t, p.a.trail.Path())[0]
	tests := []struct {
		node  string
		seq   uint64
		found bool
		err   error
		hash  string
	}{
		{"a", 1, true, nil, first.Hash},
		{"b", 1, true, nil, records(t, p.b.trail.Path())[0].Hash},
		{"a", 1000, false, nil, ""},
		{"c", 1, false, errPeerUnavailable, ""},
	}
	for _, tc := range tests {
		r, found, err := p.svcB.AuditRecordOn(auditor, tc.node, tc.seq)
		if found != tc.found || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || r.Hash != tc.hash {
			t.Errorf("%s #%d: found %v, err %v, hash %q; want %v, %v, %q", tc.node, tc.seq, found, err, r.Hash, tc.found, tc.err, tc.hash)
		}
	}
}
