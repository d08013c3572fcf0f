package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
)

// TestVerifyCluster: node b's verify reads a's trail through a's peer
// endpoint and verifies it against a's published head, with b's own;
// c, which published a head but is down, is not verified, and the
// cluster then does not verify (nor are creations checked); without c
// everything verifies; a head a's trail does not reach fails a, named.
func TestVerifyCluster(t *testing.T) {
	p := newClusterPair(t)
	ctx := audit.WithActor(context.Background(), "route:inbound")
	if _, err := p.b.m.Tokenize(ctx, "jane.customer@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if err := p.b.m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	heads := map[string][]byte{}
	for node, e := range map[string]*testEngine{"a": p.a, "b": p.b} {
		if err := e.trail.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		recs := records(t, e.trail.Path())
		last := recs[len(recs)-1]
		heads[node], _ = json.Marshal(audit.SignedHead{Seq: last.Seq, Hash: last.Hash, Prev: last.Prev, Key: last.Key, Sig: last.Sig, Time: last.Time})
	}
	heads["c"] = heads["a"]
	// One key set for every node, as a cluster shares its signing key.
	keys := func(ctx context.Context) (audit.Keys, error) {
		ka, err := p.a.auditKeys(ctx)
		if err != nil {
			return nil, err
		}
		kb, err := p.b.auditKeys(ctx)
		maps.Copy(ka, kb)
		return ka, err
	}
	published := heads
	svc := New(Options{Map: p.b.m, Trail: p.b.trail, Keys: keys, Config: p.b.cfg.Compliance, Log: p.b.log,
		Cluster: &Cluster{Node: "b", Self: p.svcB.cluster.Self, Peers: p.svcB.cluster.Peers, Store: p.b.db,
			Heads: func(context.Context) (map[string][]byte, error) { return published, nil }}})
	auditor := audit.WithActor(context.Background(), "principal:sam")

	rep, err := svc.VerifyCluster(auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(rep); rep.OK || got != "b=ok a=ok c=not_verified" || rep.Creations.Checked {
		t.Errorf("with c down: ok %v, %s, creations %+v; want b and a ok, c not verified, creations not checked", rep.OK, got, rep.Creations)
	}

	// A token made just before the verify: its creation record may still
	// be in the outbox; the verify reads the trail after delivering it.
	if _, err := p.b.m.Tokenize(ctx, "joe.customer@example.com", ""); err != nil {
		t.Fatal(err)
	}
	published = maps.Clone(heads)
	delete(published, "c")
	rep, err = svc.VerifyCluster(auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(rep); !rep.OK || got != "b=ok a=ok" || !rep.Creations.Checked || rep.Creations.Tokens != 2 {
		t.Errorf("a and b: ok %v, %s, creations %+v; want every node ok, both tokens checked", rep.OK, got, rep.Creations)
	}

	var ha audit.SignedHead
	json.Unmarshal(heads["a"], &ha)
	ha.Seq += 100
	published["a"], _ = json.Marshal(ha)
	rep, err = svc.VerifyCluster(auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(rep); rep.OK || got != "b=ok a=failed" || !strings.Contains(strings.Join(rep.Nodes[1].Problems, " "), "shorter than the head it published") {
		t.Errorf("a behind its head: ok %v, %s, a's problems %q; want a failed, shorter", rep.OK, got, rep.Nodes[1].Problems)
	}

	// The store away: this node's trail is verified, the others are not.
	away := New(Options{Map: p.b.m, Trail: p.b.trail, Keys: keys, Config: p.b.cfg.Compliance, Log: p.b.log,
		Cluster: &Cluster{Node: "b", Self: p.svcB.cluster.Self, Peers: p.svcB.cluster.Peers, Store: p.b.db,
			Heads: func(context.Context) (map[string][]byte, error) { return nil, errors.New("no quorum") }}})
	rep, err = away.VerifyCluster(auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(rep); rep.OK || got != "b=ok "+clusterUnknown+"=not_verified" || rep.Creations.Checked {
		t.Errorf("store away: ok %v, %s, creations %+v; want b ok, the others not verified", rep.OK, got, rep.Creations)
	}

	// A line that is not a record, after a's published head: the
	// verifier reads a's file as it is, not what a's reader makes of it.
	published["a"] = heads["a"]
	f, err := os.OpenFile(p.a.trail.Path(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not a record\n")
	f.Close()
	rep, err = svc.VerifyCluster(auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(rep); rep.OK || got != "b=ok a=failed" || rep.Nodes[1].Report == nil || !hasKind(*rep.Nodes[1].Report, audit.ProblemMalformed) {
		t.Errorf("a with a malformed line: ok %v, %s, a's report %+v; want a failed, malformed", rep.OK, got, rep.Nodes[1].Report)
	}
}

func hasKind(rep audit.Report, kind string) bool {
	for _, p := range rep.Problems {
		if p.Kind == kind {
			return true
		}
	}
	return false
}

func states(rep ClusterReport) string {
	var out []string
	for _, n := range rep.Nodes {
		out = append(out, n.Node+"="+n.State)
	}
	return strings.Join(out, " ")
}
