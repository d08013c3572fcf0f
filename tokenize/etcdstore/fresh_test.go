package etcdstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// waitFresh polls s.Fresh until it equals want (nil or not) and returns
// how long that took, failing the test after limit.
func waitFresh(t *testing.T, s *etcdstore.Store, want bool, limit time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		err := s.Fresh()
		if (err == nil) == want {
			return time.Since(begin)
		}
		if time.Since(begin) > limit {
			t.Fatalf("Fresh() = %v after %v; want fresh %v", err, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFreshnessQuorumLoss: a store with its map's watch open is fresh;
// with two of three members killed it becomes stale within about
// Freshness plus one check (asserted under 2 × Freshness plus a margin
// for a loaded machine), with a StaleError that matches ErrStore; with
// the members back it is fresh again.
func TestFreshnessQuorumLoss(t *testing.T) {
	c := etcdtest.Start(t)
	reg := prometheus.NewRegistry()
	s := openWith(t, c, etcdstore.Options{Registerer: reg})
	newMap(t, s, storetest.Keyring(), nil) // opens the watch
	waitFresh(t, s, true, 5*time.Second)

	// SIGKILL: the quorum is gone at a known instant (a SIGTERM'd
	// member first tries to hand its leadership over, for seconds).
	stopped := time.Now()
	c.Members[1].Kill()
	c.Members[2].Kill()
	stopTook := time.Since(stopped)
	lost := stopTook + waitFresh(t, s, false, 2*etcdstore.DefaultFreshness+2*time.Second)
	err := s.Fresh()
	var se *tokenize.StaleError
	if !errors.Is(err, tokenize.ErrStore) || !errors.As(err, &se) {
		t.Fatalf("stale Fresh() = %v; want a StaleError matching ErrStore", err)
	}
	t.Logf("2 of 3 members killed (the kills took %v): stale %v after the first kill (%v)",
		stopTook.Round(time.Millisecond), lost.Round(time.Millisecond), err)
	if se.Since.Before(stopped) {
		t.Errorf("StaleError.Since %v is before the quorum loss began (%v)", se.Since, stopped)
	}
	// It stays stale while the quorum is lost, and the watch, which
	// requires a leader, is ended and reopened meanwhile.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := s.Fresh(); err == nil {
			t.Fatal("fresh again without a quorum")
		}
	}
	t.Logf("watch restarts without a quorum: %v", counter(t, reg, "tokenproxy_etcd_watch_restarts_total"))

	restarted := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); c.Restart(t, 2) }()
	c.Restart(t, 1)
	<-done
	serving := time.Since(restarted)
	back := serving + waitFresh(t, s, true, 20*time.Second)
	t.Logf("members restarted: serving after %v, fresh %v after the restart began",
		serving.Round(time.Millisecond), back.Round(time.Millisecond))
	// Counted once the store is fresh again: on a loaded machine the watch
	// may end only after the 4 s above.
	if restarts := counter(t, reg, "tokenproxy_etcd_watch_restarts_total"); restarts == 0 {
		t.Errorf("no watch restart counted across a quorum loss")
	}
}

// TestFreshnessNeedsWatch: without a watch, changes made elsewhere would
// not reach any cache, so the store never says it is fresh.
func TestFreshnessNeedsWatch(t *testing.T) {
	c := etcdtest.Start(t)
	s := openWith(t, c, etcdstore.Options{})
	time.Sleep(3 * 250 * time.Millisecond)
	if err := s.Fresh(); err == nil || !strings.Contains(err.Error(), "no watch") {
		t.Fatalf("Fresh() without a watch = %v; want stale, no watch", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := s.Watch(ctx)
	took := waitFresh(t, s, true, 5*time.Second)
	t.Logf("fresh %v after the watch opened", took.Round(time.Millisecond))
	cancel()
	for range changed {
	}
	waitFresh(t, s, false, 2*etcdstore.DefaultFreshness+time.Second)
}

// TestStoreMetrics: the store's collectors are on the registry with the
// documented names, labelled by operation only, and leave it on Close.
func TestStoreMetrics(t *testing.T) {
	c := etcdtest.Start(t)
	reg := prometheus.NewRegistry()
	s := openWith(t, c, etcdstore.Options{Registerer: reg})
	m := newMap(t, s, storetest.Keyring(), nil)
	if _, err := m.Tokenize(context.Background(), "metrics@example.com", ""); err != nil {
		t.Fatal(err)
	}
	waitFresh(t, s, true, 5*time.Second)
	fams := gather(t, reg)
	for _, name := range []string{"tokenproxy_etcd_request_duration_seconds", "tokenproxy_etcd_watch_restarts_total",
		"tokenproxy_store_fresh", "tokenproxy_store_freshness_age_seconds"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	ops := map[string]uint64{}
	for _, mt := range fams["tokenproxy_etcd_request_duration_seconds"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if l.GetName() != "op" {
				t.Errorf("latency label %s: only op is allowed", l.GetName())
			}
			ops[l.GetValue()] = mt.GetHistogram().GetSampleCount()
		}
	}
	for _, op := range []string{"view", "update", "commit", "revision"} {
		if ops[op] == 0 {
			t.Errorf("no %s observed: %v", op, ops)
		}
	}
	if len(ops) != 4 {
		t.Errorf("latency ops %v; want view, update, commit, revision", ops)
	}
	if g := fams["tokenproxy_store_fresh"].GetMetric()[0].GetGauge().GetValue(); g != 1 {
		t.Errorf("tokenproxy_store_fresh = %v on a fresh store", g)
	}
	if age := fams["tokenproxy_store_freshness_age_seconds"].GetMetric()[0].GetGauge().GetValue(); age > 1 {
		t.Errorf("freshness age %vs on a fresh store", age)
	}
	m.Close()
	s.Close()
	if n := len(gather(t, reg)); n != 0 {
		t.Errorf("%d metric families left after Close", n)
	}
}

// openWith opens a store on the cluster with opts (endpoints, prefix,
// tenant and node filled in) that the test closes.
func openWith(t *testing.T, c *etcdtest.Cluster, opts etcdstore.Options) *etcdstore.Store {
	t.Helper()
	opts.Endpoints, opts.Prefix, opts.Tenant, opts.NodeID = c.Endpoints(), freshPrefix(), "test", "n1"
	s, err := etcdstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	f := gather(t, reg)[name]
	if f == nil {
		t.Fatalf("metric %s missing", name)
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}
