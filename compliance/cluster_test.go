package compliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// clusterPair is two compliance services, a and b, each with its own map
// and trail, b reading a's trail through a's peer endpoint (an httptest
// TLS server). Heads also names a node c that kept a trail but is down.
type clusterPair struct {
	a, b   *testEngine
	svcA   *Service
	svcB   *Service
	srvA   *httptest.Server
	peerA  Peer
	logs   bytes.Buffer
	peersB map[string][]byte
}

func newClusterPair(t *testing.T) *clusterPair {
	p := &clusterPair{}
	p.a, p.b = newTestEngine(t, &p.logs), newTestEngine(t, &p.logs)
	mux := http.NewServeMux()
	p.srvA = httptest.NewUnstartedServer(mux)
	p.srvA.StartTLS()
	t.Cleanup(p.srvA.Close)
	var err error
	if p.peerA, err = NewPeer(p.srvA.URL, p.srvA.Certificate()); err != nil {
		t.Fatal(err)
	}
	heads := func(context.Context) (map[string][]byte, error) {
		return map[string][]byte{"a": nil, "b": nil, "c": nil}, nil
	}
	p.peersB = map[string][]byte{"a": p.peerA.Encode(), "b": []byte(`{"url":"https://b.invalid","token":"x"}`)}
	peers := func(context.Context) (map[string][]byte, error) { return p.peersB, nil }
	p.svcA = New(Options{Map: p.a.m, Trail: p.a.trail, Keys: p.a.auditKeys, Config: p.a.cfg.Compliance, Log: p.a.log,
		Cluster: &Cluster{Node: "a", Self: p.peerA, Peers: peers, Heads: heads}})
	p.svcA.Register(mux)
	selfB, err := NewPeer("https://b.invalid", p.srvA.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	p.svcB = New(Options{Map: p.b.m, Trail: p.b.trail, Keys: p.b.auditKeys, Config: p.b.cfg.Compliance, Log: p.b.log,
		Cluster: &Cluster{Node: "b", Self: selfB, Peers: peers, Heads: heads}})
	t.Cleanup(func() {
		if strings.Contains(strings.ToLower(p.logs.String()), "jane.customer") {
			t.Errorf("a log names the subject:\n%s", p.logs.String())
		}
	})
	return p
}

// TestClusterExportMergesTrails: a subject export on node b lists the
// records a's trail holds of the subject's token with b's own, in order,
// names each node read and the one whose trail is missing (c: down), and
// a audits the read as the peer b's, for b's actor.
func TestClusterExportMergesTrails(t *testing.T) {
	p := newClusterPair(t)
	ctx := audit.WithActor(context.Background(), "route:inbound")
	iss, err := p.b.m.Tokenize(ctx, "Jane.Customer@example.com", "Jane")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.b.m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	// The token resolved on a (its outbound route), after the creation on b.
	resolved := audit.Record{Event: audit.TokenResolved, Actor: "route:outbound", Tokens: []string{iss.Address}, Outcome: "ok"}
	if _, err := p.a.trail.Append(ctx, resolved); err != nil {
		t.Fatal(err)
	}
	officer := audit.WithActor(context.Background(), "principal:alice")
	out, err := p.svcB.Export(officer, "jane.customer@example.com", "subject access request 12")
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range out.Audit {
		events = append(events, r.Event)
	}
	if got := strings.Join(events, ","); got != "token.created,token.resolved" {
		t.Errorf("export's records = %s, want b's creation then a's resolution", got)
	}
	want := []TrailState{{Node: "b", Records: 1}, {Node: "a", Records: 1}, {Node: "c", Missing: "no live node serves its trail"}}
	if len(out.Trails) != len(want) {
		t.Fatalf("trails = %+v, want %+v", out.Trails, want)
	}
	for i := range want {
		if out.Trails[i] != want[i] {
			t.Errorf("trails[%d] = %+v, want %+v", i, out.Trails[i], want[i])
		}
	}
	last := records(t, p.a.trail.Path())
	read := last[len(last)-1]
	if read.Event != audit.AuditRead || read.Actor != "peer:b" || read.Detail["for"] != "principal:alice" {
		t.Errorf("a's record of the read = %+v, want audit.read by peer:b for principal:alice", read)
	}
}

// TestClusterListingHeaders: an audit listing through b's API holds a's
// records and says which trails it merged and which are missing.
func TestClusterListingHeaders(t *testing.T) {
	p := newClusterPair(t)
	ctx := audit.WithActor(context.Background(), "system:test")
	if _, err := p.a.trail.Append(ctx, audit.Record{Event: audit.KeysRotated, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	err := p.svcB.listAudit(ctx, audit.Query{Events: []string{audit.KeysRotated}}, rec, func(s []TrailState) { setTrailHeaders(rec, s) })
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(rec.Body.String(), `"keys.rotated"`); n != 1 {
		t.Errorf("listing on b holds %d of a's keys.rotated records, want 1:\n%s", n, rec.Body.String())
	}
	if got := rec.Header().Get(TrailsHeader); got != "b, a" {
		t.Errorf("%s = %q, want \"b, a\"", TrailsHeader, got)
	}
	if got := rec.Header().Get(TrailsMissingHeader); got != "c" {
		t.Errorf("%s = %q, want \"c\"", TrailsMissingHeader, got)
	}

	// a's node gone from the store's entries: its trail is reported
	// missing, and the listing holds b's records only.
	delete(p.peersB, "a")
	rec = httptest.NewRecorder()
	if err := p.svcB.listAudit(ctx, audit.Query{}, rec, func(s []TrailState) { setTrailHeaders(rec, s) }); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header().Get(TrailsMissingHeader); got != "a, c" {
		t.Errorf("%s = %q, want \"a, c\"", TrailsMissingHeader, got)
	}
}

// TestClusterPeerUnreachable: a live node that does not answer (its
// certificate is not the one it published) is reported missing; the read
// still answers with the others' records.
func TestClusterPeerUnreachable(t *testing.T) {
	p := newClusterPair(t)
	forged := p.peerA
	forged.CertSHA256 = strings.Repeat("0", 64)
	p.peersB["a"] = forged.Encode()
	recs, states, err := p.svcB.mergedRecords(audit.WithActor(context.Background(), "principal:sam"), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || states[1].Node != "a" || !strings.Contains(states[1].Missing, "did not answer") {
		t.Errorf("states = %+v, want a missing (did not answer)", states)
	}
	if !strings.Contains(p.logs.String(), "peer_trail_unavailable") {
		t.Errorf("no peer_trail_unavailable log line:\n%s", p.logs.String())
	}
}

// TestClusterPeerEndpointRefusals: the peer endpoint answers only this
// run's token, over HTTPS, with the calling node and actor named.
func TestClusterPeerEndpointRefusals(t *testing.T) {
	p := newClusterPair(t)
	cases := []struct {
		name, token, node, forActor string
		want                        int
	}{
		{"no token", "", "b", "principal:sam", http.StatusUnauthorized},
		{"wrong token", "not-the-token", "b", "principal:sam", http.StatusUnauthorized},
		{"a principal's token is not a peer's", "secret-sam", "b", "principal:sam", http.StatusUnauthorized},
		{"no node", p.peerA.Token, "", "principal:sam", http.StatusBadRequest},
		{"address as actor", p.peerA.Token, "b", "jane.customer@example.com", http.StatusBadRequest},
		{"space in the node id", p.peerA.Token, "node b", "principal:sam", http.StatusBadRequest},
		{"ok", p.peerA.Token, "b", "principal:sam", http.StatusOK},
	}
	// Each peer endpoint: the records, a page (peerPage), the whole
	// trail (peerTrail).
	for _, path := range []string{peerPath, peerPagePath + "?limit=5", peerTrailPath} {
		for _, c := range cases {
			t.Run(path+" "+c.name, func(t *testing.T) { peerCall(t, p, path, c.token, c.node, c.forActor, c.want) })
		}
	}
	peerCall(t, p, peerPagePath, p.peerA.Token, "b", "principal:sam", http.StatusBadRequest) // a page without its size
	p.svcA.Close()
	trail := string(mustRead(t, p.a.trail.Path()))
	if !strings.Contains(trail, "peer_audit_read/unauthenticated=") || !strings.Contains(trail, "peer_audit_read/bad_request=") {
		t.Errorf("a's trail holds no record of the refused peer calls")
	}
	if strings.Contains(trail, "jane.customer") {
		t.Errorf("a's trail names the address sent as an actor")
	}
}

// TestMergeOrder: records of two trails interleave by the revision of
// their outbox refs where both carry one, else by time; each trail keeps
// its order; a record delivered twice (the same ref in both) is left out
// once; Limit bounds the merge.
func TestMergeOrder(t *testing.T) {
	ref := func(rev int) map[string]string {
		return map[string]string{"ref": fmt.Sprintf("%020d-abc-0", rev)}
	}
	// a's clock runs ahead: its creation at revision 12 is stamped later
	// than b's at revision 15, yet revision 12 committed first.
	a := writeTrail(t, []trailEntry{{audit.TokenCreated, 10, ref(12)}, {audit.AuditRead, 11, nil}, {audit.TokenCreated, 30, ref(20)}})
	b := writeTrail(t, []trailEntry{{audit.TokenCreated, 5, ref(15)}, {audit.TokenCreated, 40, ref(20)}, {audit.AuditRead, 50, nil}})
	both := []string{audit.TokenCreated, audit.AuditRead}
	cases := []struct {
		name     string
		q        audit.Query
		want     string
		wantDups int
	}{
		{"all", audit.Query{Events: both}, "a:10 b:5 a:11 a:30 b:50", 1},
		{"limit", audit.Query{Events: both, Limit: 2}, "a:10 b:5", 0},
		{"one event", audit.Query{Events: []string{audit.AuditRead}}, "a:11 b:50", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srcs := []TrailSource{{Node: "a", R: bytes.NewReader(a)}, {Node: "b", R: bytes.NewReader(b)}}
			var got []string
			dups := 0
			for r, err := range Merge(context.Background(), srcs, c.q, &dups) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s:%d", r.Node, r.Rec.Time.Second()))
			}
			if g := strings.Join(got, " "); g != c.want || dups != c.wantDups {
				t.Errorf("merge = %s (%d dups), want %s (%d dups)", g, dups, c.want, c.wantDups)
			}
		})
	}
}

type trailEntry struct {
	event  string
	sec    int
	detail map[string]string
}

// writeTrail writes a trail whose records carry the given times (seconds
// past 12:00) and returns its bytes.
func writeTrail(t *testing.T, entries []trailEntry) []byte {
	t.Helper()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := t0
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := mustOpen(t, audit.Options{Path: path, Now: func() time.Time { return now }})
	for _, e := range entries {
		now = t0.Add(time.Duration(e.sec) * time.Second)
		if _, err := l.Append(context.Background(), audit.Record{Event: e.event, Actor: "system:test", Outcome: "ok", Detail: e.detail}); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, l)
	return mustRead(t, path)
}

// TestMergeBadTrail: a trail that cannot be parsed fails the merge, named.
func TestMergeBadTrail(t *testing.T) {
	srcs := []TrailSource{{Node: "a", R: strings.NewReader("{not json\n")}}
	for _, err := range Merge(context.Background(), srcs, audit.Query{}, nil) {
		if err == nil || !strings.Contains(err.Error(), "trail of node a") {
			t.Fatalf("err = %v, want one naming node a", err)
		}
		return
	}
	t.Fatal("the merge of a bad trail yielded nothing")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSortByEvent: an export orders a creation delivered to its trail
// after the token's first use on another node (the outbox lingers) by its
// commit, before that use.
func TestSortByEvent(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	created := audit.Record{Event: audit.TokenCreated, Time: t0.Add(2 * time.Second),
		Detail: map[string]string{"ref": fmt.Sprintf("%020d-abc-0", 7), "committed": t0.Format(time.RFC3339Nano)}}
	resolved := audit.Record{Event: audit.TokenResolved, Time: t0.Add(time.Second)}
	later := audit.Record{Event: audit.ComplianceExport, Time: t0.Add(3 * time.Second)}
	recs := []MergedRecord{{Node: "b", Rec: resolved}, {Node: "a", Rec: created}, {Node: "b", Rec: later}}
	sortByEvent(recs)
	var got []string
	for _, r := range recs {
		got = append(got, r.Rec.Event)
	}
	if g := strings.Join(got, ","); g != "token.created,token.resolved,compliance.export" {
		t.Errorf("order = %s, want the creation first", g)
	}
}

// TestClusterStoreAway: with the store unable to list the nodes, a read
// answers with this node's records and says the others' are missing.
func TestClusterStoreAway(t *testing.T) {
	p := newClusterPair(t)
	p.svcB.cluster.Peers = func(context.Context) (map[string][]byte, error) { return nil, errors.New("etcd: no leader") }
	rec := httptest.NewRecorder()
	if err := p.svcB.listAudit(context.Background(), audit.Query{}, rec, func(s []TrailState) { setTrailHeaders(rec, s) }); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header().Get(TrailsMissingHeader); got != clusterUnknown {
		t.Errorf("%s = %q, want %q", TrailsMissingHeader, got, clusterUnknown)
	}
	if !strings.Contains(rec.Body.String(), `"audit.read"`) {
		t.Errorf("the listing lost this node's records:\n%s", rec.Body.String())
	}
}

// peerCall calls a peer endpoint of a and wants the status want.
func peerCall(t *testing.T, p *clusterPair, path, token, node, forActor string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.srvA.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(peerNodeHeader, node)
	req.Header.Set(peerForHeader, forActor)
	resp, err := p.srvA.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
	}
}
