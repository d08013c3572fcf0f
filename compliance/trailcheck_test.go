package compliance

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
)

// TestCheckTrail judges one node's trail against the head it published:
// the whole trail verifies with or without the head; a trail cut back
// behind its head, a head whose record has another hash, a head whose
// signature does not verify, and a line cut in the middle each fail,
// named; the creations the trail holds are collected.
func TestCheckTrail(t *testing.T) {
	e := newTestEngine(t, &bytes.Buffer{})
	ctx := audit.WithActor(context.Background(), "route:inbound")
	iss, err := e.m.Tokenize(ctx, "jane.customer@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := e.auditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.close() // Close writes a checkpoint: the head the node publishes
	whole, err := os.ReadFile(e.trail.Path())
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, e.trail.Path())
	last := recs[len(recs)-1]
	if last.Event != audit.Checkpoint {
		t.Fatalf("the trail ends with %s, want a checkpoint", last.Event)
	}
	head := audit.SignedHead{Seq: last.Seq, Hash: last.Hash, Prev: last.Prev, Key: last.Key, Sig: last.Sig, Time: last.Time}
	lines := bytes.SplitAfter(whole, []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-3], nil) // the stop record and the checkpoint gone
	otherHash, badSig := head, head
	otherHash.Hash = strings.Repeat("0", len(head.Hash))
	badSig.Prev = strings.Repeat("0", len(head.Prev))

	tests := []struct {
		name    string
		trail   []byte
		head    *audit.SignedHead
		state   string
		problem string // in Problems, or in the report's problems
	}{
		{"whole, head", whole, &head, TrailOK, ""},
		{"whole, no head", whole, nil, TrailOK, ""},
		{"cut behind its head", cut, &head, TrailFailed, "shorter than the head it published"},
		{"cut, no head", cut, nil, TrailOK, ""},
		{"head of another record", whole, &otherHash, TrailFailed, "is not the head it published"},
		{"head's signature", whole, &badSig, TrailFailed, "published head:"},
		{"line cut in the middle", whole[:len(whole)-5], &head, TrailFailed, "truncated"},
		{"empty trail, head", nil, &head, TrailFailed, "the trail ends at seq 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CheckTrail(context.Background(), "a", bytes.NewReader(tc.trail), tc.head, keys)
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			found = append(found, c.Problems...)
			for _, p := range c.Report.Problems {
				found = append(found, p.Kind+": "+p.Text)
			}
			if c.State != tc.state || (tc.problem != "") != (len(found) > 0) || !strings.Contains(strings.Join(found, "\n"), tc.problem) {
				t.Errorf("state %s, findings %q; want %s with %q", c.State, found, tc.state, tc.problem)
			}
			for _, p := range c.Report.Problems {
				if strings.Contains(p.Text, "head file") {
					t.Errorf("a finding about the published head is worded for a head file: %+v", p)
				}
			}
			if tc.state == TrailOK && !Created([]TrailCheck{c})[TokenLocal(iss.Address)] {
				t.Errorf("creations = %v, want %s", c.created, iss.Address)
			}
		})
	}
}

// TestCheckTrailNotRead: a trail that cannot be read is not verified,
// never ok.
func TestCheckTrailNotRead(t *testing.T) {
	c := NotRead("b", nil, "its node did not answer")
	if c.OK() || c.State != TrailNotVerified {
		t.Errorf("NotRead = %+v, want not verified", c)
	}
}

// TestCheckTrailMalformedLarge: a line that is not a record in the middle
// of a trail larger than any read buffer is a finding, not an I/O error:
// the creation scan stops there, Verify reads on.
func TestCheckTrailMalformedLarge(t *testing.T) {
	e := newTestEngine(t, &bytes.Buffer{})
	ctx := audit.WithActor(context.Background(), "system:test")
	recs := make([]audit.Record, 2000)
	for i := range recs {
		recs[i] = audit.Record{Event: audit.KeysRotated, Outcome: "ok", Count: i}
	}
	if _, err := e.trail.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	e.close()
	whole, err := os.ReadFile(e.trail.Path())
	if err != nil {
		t.Fatal(err)
	}
	mid := bytes.IndexByte(whole[len(whole)/3:], '\n') + len(whole)/3 + 1
	bad := append(append(append([]byte(nil), whole[:mid]...), "not a record\n"...), whole[mid:]...)
	c, err := CheckTrail(context.Background(), "a", bytes.NewReader(bad), nil, nil)
	if err != nil {
		t.Fatalf("CheckTrail: %v, want a finding", err)
	}
	if c.State != TrailFailed || c.Report.Records < 2000 || c.Report.Problems[0].Kind != audit.ProblemMalformed {
		t.Errorf("state %s, %d records, problems %+v; want failed, read to the end, malformed", c.State, c.Report.Records, c.Report.Problems)
	}
}
