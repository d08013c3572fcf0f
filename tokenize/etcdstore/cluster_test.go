package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// testLeaseTTL is etcd's smallest lease TTL with its default election
// timeout: the node deaths below take effect after it.
const testLeaseTTL = 2 * time.Second

// openNode opens a store on the cluster as one node of it, with a short
// lease.
func openNode(t testing.TB, c *etcdtest.Cluster, prefix, node string) (*etcdstore.Store, error) {
	return openNodeMetrics(t, c, prefix, node, nil)
}

// openNodeMetrics is openNode with the store's metrics on reg.
func openNodeMetrics(t testing.TB, c *etcdtest.Cluster, prefix, node string, reg prometheus.Registerer) (*etcdstore.Store, error) {
	t.Helper()
	s, err := etcdstore.Open(context.Background(), etcdstore.Options{
		Endpoints: c.Endpoints(), Prefix: prefix, Tenant: "test", NodeID: node,
		DialTimeout: 5 * time.Second, LeaseTTL: testLeaseTTL, Registerer: reg,
	})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func mustOpenNode(t testing.TB, c *etcdtest.Cluster, prefix, node string) *etcdstore.Store {
	t.Helper()
	s, err := openNode(t, c, prefix, node)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCluster runs the liveness, takeover and election tests on one
// cluster, each under a prefix of its own.
func TestCluster(t *testing.T) {
	c := etcdtest.Start(t)
	t.Run("node-id-taken", func(t *testing.T) { testNodeIDTaken(t, c) })
	t.Run("outbox-takeover", func(t *testing.T) { testOutboxTakeover(t, c) })
	t.Run("killed-mid-stream", func(t *testing.T) { testKilledMidStream(t, c) })
	t.Run("election-failover", func(t *testing.T) { testElectionFailover(t, c) })
	t.Run("retention-one-node", func(t *testing.T) { testRetentionOneNode(t, c) })
}

// testNodeIDTaken: a second live node with the same node id is refused,
// naming it; after a clean close the id is free at once, after a crash
// within the lease TTL.
func testNodeIDTaken(t *testing.T, c *etcdtest.Cluster) {
	prefix := freshPrefix()
	first := mustOpenNode(t, c, prefix, "n1")
	begin := time.Now()
	_, err := openNode(t, c, prefix, "n1")
	if !errors.Is(err, etcdstore.ErrNodeIDTaken) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf("second live n1: %v; want ErrNodeIDTaken naming n1", err)
	}
	t.Logf("second live node with the same id refused after %v", time.Since(begin).Round(time.Millisecond))
	first.Close()
	begin = time.Now()
	again := mustOpenNode(t, c, prefix, "n1")
	t.Logf("n1 reopened %v after a clean close", time.Since(begin).Round(time.Millisecond))
	etcdstore.Crash(again)
	begin = time.Now()
	mustOpenNode(t, c, prefix, "n1")
	t.Logf("n1 reopened %v after a crash", time.Since(begin).Round(time.Millisecond))
}

// testOutboxTakeover: node n1 dies with N creation records in its outbox
// (its trail hangs: a trail that refused them would stop n1's token
// creation after its first failed delivery); of the two survivors, exactly one delivers
// all N, each once, with the refs n1 gave them; the claim is then given
// up and n1 may come back.
func testOutboxTakeover(t *testing.T, c *etcdtest.Cluster) {
	const n = 40
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	stuck := &storetest.Auditor{Hold: make(chan struct{})}
	defer close(stuck.Hold) // before the cleanups close n1's map
	s1 := mustOpenNode(t, c, prefix, "n1")
	m1 := newMap(t, s1, keys, stuck)
	survivors := []*storetest.Auditor{{}, {}}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for i, a := range survivors {
		s, err := openNodeMetrics(t, c, prefix, fmt.Sprintf("n%d", i+2), regs[i])
		if err != nil {
			t.Fatal(err)
		}
		newMap(t, s, keys, a)
	}
	made := map[string]bool{}
	for i := range n {
		iss, err := m1.Tokenize(ctx, fmt.Sprintf("c%d@example.com", i), "")
		if err != nil {
			t.Fatal(err)
		}
		made[iss.Address] = true
	}
	var left []string
	s1.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Outbox(2*n, func(ref string, _ []byte) error { left = append(left, ref); return nil })
	})
	if len(left) != n {
		t.Fatalf("n1's outbox holds %d entries, want %d", len(left), n)
	}

	etcdstore.Crash(s1)
	died := time.Now()
	recs := waitRecords(t, survivors, n, 15*time.Second)
	t.Logf("%d records delivered by a survivor %v after n1 died (lease TTL %v)", n, time.Since(died).Round(time.Millisecond), testLeaseTTL)
	checkOnce(t, recs, left, made)
	time.Sleep(time.Second) // a late second delivery would show here
	if got := len(survivors[0].Records()) + len(survivors[1].Records()); got != n {
		t.Fatalf("%d records delivered over both survivors, want %d", got, n)
	}
	if len(survivors[0].Records()) != 0 && len(survivors[1].Records()) != 0 {
		t.Fatalf("both survivors delivered n1's records: %d and %d", len(survivors[0].Records()), len(survivors[1].Records()))
	}
	waitNoKey(t, c, prefix+"test/takeover/n1", 10*time.Second)
	// The survivor that delivered counts one takeover and n records.
	waitMetrics(t, regs, map[string]float64{"tokenproxy_outbox_takeovers_total": 1, "tokenproxy_outbox_takeover_records_total": n}, 5*time.Second)
	mustOpenNode(t, c, prefix, "n1") // the outbox is handed back: n1 may register
}

// waitMetrics waits until each named metric, summed over the registries,
// has its value.
func waitMetrics(t *testing.T, regs []*prometheus.Registry, want map[string]float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]float64{}
		for _, reg := range regs {
			for name, v := range values(t, reg) {
				got[name] += v
			}
		}
		ok := true
		for name, v := range want {
			ok = ok && got[name] == v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// values returns a registry's counters and gauges by name and labels
// (name{label="value"}).
func values(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			}
		}
	}
	return out
}

// checkOnce fails unless recs are the creation records of exactly refs,
// each once, for the tokens made.
func checkOnce(t *testing.T, recs []tokenize.Change, refs []string, made map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Ref]++
		if r.Event != tokenize.EventCreated || !made[r.Token] {
			t.Errorf("record %+v: not the creation of a token n1 made", r)
		}
	}
	for _, ref := range refs {
		if seen[ref] != 1 {
			t.Errorf("ref %s delivered %d times, want once", ref, seen[ref])
		}
	}
	if len(seen) != len(refs) {
		t.Errorf("%d distinct refs delivered, want %d", len(seen), len(refs))
	}
}

// waitRecords waits until the auditors hold n records between them.
func waitRecords(t *testing.T, auditors []*storetest.Auditor, n int, timeout time.Duration) []tokenize.Change {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var all []tokenize.Change
		for _, a := range auditors {
			all = append(all, a.Records()...)
		}
		if len(all) >= n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records delivered after %v, want %d", len(all), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNoKey waits until no key starts with prefix.
func waitNoKey(t *testing.T, c *etcdtest.Cluster, prefix string, timeout time.Duration) {
	t.Helper()
	cli := c.Client(t)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after %v (%v)", prefix, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testKilledMidStream: node n1 is killed while it creates tokens and
// delivers their records; afterwards every token in the map has its
// creation record in n1's trail or in the survivor's, and no trail holds
// a record twice.
func testKilledMidStream(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	a1, a2 := &storetest.Auditor{}, &storetest.Auditor{}
	s1 := mustOpenNode(t, c, prefix, "n1")
	m1 := newMap(t, s1, keys, a1)
	s2 := mustOpenNode(t, c, prefix, "n2")
	m2 := newMap(t, s2, keys, a2)

	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if _, err := m1.Tokenize(ctx, fmt.Sprintf("w%d-%d@example.com", w, i), ""); err != nil {
					return // the node is dead
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	etcdstore.Crash(s1)
	died := time.Now()
	wg.Wait()
	m1.Close() // its goroutines end; its store is gone, so it delivers nothing more

	waitNoKey(t, c, prefix+"test/outbox/n1/", 15*time.Second)
	t.Logf("n1's outbox delivered %v after its death", time.Since(died).Round(time.Millisecond))
	waitNoKey(t, c, prefix+"test/takeover/n1", 10*time.Second)
	if err := m2.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	err := s2.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(local string, _ []byte) (bool, error) {
			tokens = append(tokens, format.Address(local))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	both := 0
	inTrail := func(a *storetest.Auditor) map[string]bool {
		refs := map[string]bool{}
		for _, r := range a.Records() {
			if refs[r.Ref] {
				t.Errorf("ref %s twice in one trail", r.Ref)
			}
			refs[r.Ref] = true
			created[r.Token]++
		}
		return refs
	}
	r1, r2 := inTrail(a1), inTrail(a2)
	for ref := range r2 {
		if r1[ref] {
			both++
		}
	}
	for _, tok := range tokens {
		if created[tok] == 0 {
			t.Errorf("token %s has no creation record in any trail", tok)
		}
	}
	t.Logf("%d tokens (%d acknowledged); records: %d in n1's trail, %d in n2's (taken over), %d in both (n1 died between delivery and delete)",
		len(tokens), acked, len(r1), len(r2), both)
	if len(tokens) < acked {
		t.Fatalf("%d tokens in the map, %d acknowledged", len(tokens), acked)
	}
}

// testElectionFailover: two nodes campaign for one task; one leads; when
// it dies (crash: its lease must end) the other leads.
func testElectionFailover(t *testing.T, c *etcdtest.Cluster) {
	prefix := freshPrefix()
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var stores []*etcdstore.Store
	for i, reg := range regs {
		s, err := openNodeMetrics(t, c, prefix, fmt.Sprintf("n%d", i+1), reg)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	const leads = `tokenproxy_cluster_leader{task="task"}`
	type won struct {
		i   int
		ctx context.Context
		at  time.Time
	}
	wins := make(chan won, 2)
	for i, s := range stores {
		go func() {
			led, err := s.Lead(t.Context(), "task")
			if err == nil {
				wins <- won{i, led, time.Now()}
			}
		}()
	}
	first := <-wins
	select {
	case w := <-wins:
		t.Fatalf("n%d and n%d lead at once", first.i+1, w.i+1)
	case <-time.After(time.Second):
	}
	if a, b := values(t, regs[first.i])[leads], values(t, regs[1-first.i])[leads]; a != 1 || b != 0 {
		t.Fatalf("leader gauge: %v on the leader, %v on the other node; want 1 and 0", a, b)
	}
	etcdstore.Crash(stores[first.i])
	died := time.Now()
	select {
	case w := <-wins:
		t.Logf("n%d leads %v after the leader's crash (lease TTL %v)", w.i+1, w.at.Sub(died).Round(time.Millisecond), testLeaseTTL)
	case <-time.After(15 * time.Second):
		t.Fatal("no new leader 15 s after the leader's crash")
	}
	select {
	case <-first.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the dead leader's context did not end")
	}
	waitMetrics(t, regs[1-first.i:2-first.i], map[string]float64{leads: 1}, 5*time.Second)
	waitMetrics(t, regs[first.i:first.i+1], map[string]float64{leads: 0}, 5*time.Second)
}

// testRetentionOneNode: two nodes run the retention sweeper; only the
// leader sweeps (each idle token expired once, all records from one
// node); when it closes, the other sweeps.
func testRetentionOneNode(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	idle := makeIdle(t, c, prefix, keys, "a", 20)
	auditors := []*storetest.Auditor{{}, {}}
	var stores []*etcdstore.Store
	var maps []*tokenize.Map
	var stops []func()
	for i, a := range auditors {
		s := mustOpenNode(t, c, prefix, fmt.Sprintf("n%d", i+1))
		m := newMap(t, s, keys, a)
		svc := compliance.New(compliance.Options{Map: m, Log: slog.Default()})
		stop := svc.StartRetention(policy.Retention{TokenMaxIdle: 24 * time.Hour, SweepInterval: 200 * time.Millisecond})
		t.Cleanup(stop)
		stores, maps, stops = append(stores, s), append(maps, m), append(stops, stop)
	}
	waitExpired(t, maps[0], idle, 20*time.Second)
	time.Sleep(time.Second) // several sweeps more: a second sweeper would show
	leader := expiredOnce(t, ctx, maps, auditors, idle)
	t.Logf("n%d swept %d idle tokens; the other node swept none", leader+1, len(idle))

	stops[leader]()
	maps[leader].Close()
	stores[leader].Close()
	closed := time.Now()
	other := 1 - leader
	more := makeIdle(t, c, prefix, keys, "b", 10)
	waitExpired(t, maps[other], more, 20*time.Second)
	t.Logf("n%d swept after n%d closed: idle tokens made then expired %v after the close (sweep interval 200ms)",
		other+1, leader+1, time.Since(closed).Round(time.Millisecond))
	got := map[string]int{}
	maps[other].SyncAudit(ctx)
	for _, tok := range auditors[other].Tokens(tokenize.EventExpired) {
		got[tok]++
	}
	for _, tok := range more {
		if got[tok] != 1 {
			t.Errorf("%s expired %d times by n%d, want once", tok, got[tok], other+1)
		}
	}
}

// makeIdle makes n tokens last used three days ago, through a node of
// their own that then closes.
func makeIdle(t *testing.T, c *etcdtest.Cluster, prefix string, keys *vault.Keyring, tag string, n int) []string {
	t.Helper()
	s := mustOpenNode(t, c, prefix, "maker-"+tag)
	defer s.Close()
	m, err := tokenize.NewMap(s, keys, tokenize.Options{Format: format, Tenant: "test",
		Now: func() time.Time { return time.Now().Add(-72 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out []string
	for i := range n {
		iss, err := m.Tokenize(context.Background(), fmt.Sprintf("idle-%s%d@example.com", tag, i), "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, iss.Address)
	}
	return out
}

// waitExpired waits until none of tokens resolves on m.
func waitExpired(t *testing.T, m *tokenize.Map, tokens []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, tok := range tokens {
		for {
			_, err := m.Inspect(context.Background(), tok)
			if errors.Is(err, tokenize.ErrUnknownToken) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still resolves after %v (%v)", tok, timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// expiredOnce checks that each idle token has one expiry record, all from
// one node, and returns that node's index.
func expiredOnce(t *testing.T, ctx context.Context, maps []*tokenize.Map, auditors []*storetest.Auditor, idle []string) int {
	t.Helper()
	leader := -1
	got := map[string]int{}
	for i, a := range auditors {
		if err := maps[i].SyncAudit(ctx); err != nil {
			t.Fatal(err)
		}
		toks := a.Tokens(tokenize.EventExpired)
		if len(toks) == 0 {
			continue
		}
		if leader >= 0 {
			t.Fatalf("both nodes swept: %d and %d expiry records", len(auditors[leader].Tokens(tokenize.EventExpired)), len(toks))
		}
		leader = i
		for _, tok := range toks {
			got[tok]++
		}
	}
	for _, tok := range idle {
		if got[tok] != 1 {
			t.Errorf("%s has %d expiry records, want 1", tok, got[tok])
		}
	}
	if leader < 0 {
		t.Fatal("no expiry record on either node")
	}
	return leader
}
