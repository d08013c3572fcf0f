package etcdstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// BenchmarkTokenizeNew50 creates b.N new tokens (each with its creation
// record in the outbox, delivered meanwhile) from 50 concurrent callers on
// one node, as 50 SMTP sessions would, on a 3-member cluster on loopback.
// Issue 15's target: ≥ 5,000 tokens/s, p99 ≤ 50 ms. Run with a fixed
// count, e.g. -benchtime=20000x.
//
// Two ways on one cluster, for a same-run A/B: lookup-then-update is the
// path without tokenize.Creator (a View finds the address absent, then an
// Update creates it), create-if-absent the one Tokenize takes on etcd (one
// Txn per token, shared by concurrent creations). Each reports the CPU
// time per token of this process (the node) and of the three etcd members,
// which share the machine's cores.
func BenchmarkTokenizeNew50(b *testing.B) {
	c := etcdtest.Start(b)
	for _, path := range []struct {
		name string
		wrap func(*etcdstore.Store) tokenize.Store
	}{
		{"lookup-then-update", func(s *etcdstore.Store) tokenize.Store { return withoutCreator{Store: s} }},
		{"create-if-absent", func(s *etcdstore.Store) tokenize.Store { return s }},
	} {
		b.Run(path.name, func(b *testing.B) {
			store := path.wrap(openStore(b, c, freshPrefix(), "n1"))
			if _, fast := store.(tokenize.Creator); fast != (path.name == "create-if-absent") {
				b.Fatalf("%s: the store is a tokenize.Creator: %v", path.name, fast)
			}
			benchNewTokens(b, newMap(b, store, storetest.Keyring(), &storetest.Auditor{}))
		})
	}
}

// withoutCreator is an etcd store without the create-if-absent path: its
// CreateToken field hides the promoted method (a field at depth 0 wins over
// a method at depth 1), so it is no tokenize.Creator, and it keeps every
// other method and optional interface of the store.
type withoutCreator struct {
	*etcdstore.Store
	CreateToken struct{}
}

// benchNewTokens is BenchmarkTokenizeNew50's run on one map.
func benchNewTokens(b *testing.B, m *tokenize.Map) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, 50)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := readCPU(b)
	start := time.Now()
	for w := range lat {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := m.Tokenize(ctx, fmt.Sprintf("new%d@example.com", i), "Some Name"); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := readCPU(b).since(cpu0)
	all := slices.Sorted(slices.Values(slices.Concat(lat...)))
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tokens/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	}
	b.ReportMetric(float64(cpu.self.Microseconds())/float64(b.N), "node-cpu-us/token")
	b.ReportMetric(float64(cpu.members.Microseconds())/float64(b.N), "etcd-cpu-us/token")
}

// BenchmarkErasurePropagation erases b.N subjects on node n1 while node
// n2 holds each one's token in its known-address cache, and measures how
// long until n2 stops handing out the erased token (its watch dropped the
// entry; the address then gets a new token). Issue 15's target: p99 ≤
// 1.25 s over 100 erasures (-benchtime=100x).
func BenchmarkErasurePropagation(b *testing.B) {
	c := etcdtest.Start(b)
	ctx := context.Background()
	prefix, keys := freshPrefix(), storetest.Keyring()
	n1 := newMap(b, openStore(b, c, prefix, "n1"), keys, &storetest.Auditor{})
	n2 := newMap(b, openStore(b, c, prefix, "n2"), keys, &storetest.Auditor{})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		addr := fmt.Sprintf("erase%d@example.com", i)
		first, err := n1.Tokenize(ctx, addr, "")
		if err != nil {
			b.Fatal(err)
		}
		if cached, err := n2.Tokenize(ctx, addr, ""); err != nil || cached.Address != first.Address {
			b.Fatalf("n2 Tokenize = %+v, %v; want %s", cached, err, first.Address)
		}
		if _, err := n1.EraseSubject(ctx, addr); err != nil {
			b.Fatal(err)
		}
		erased := time.Now()
		for {
			iss, err := n2.Tokenize(ctx, addr, "")
			if err != nil {
				b.Fatal(err)
			}
			if iss.Address != first.Address {
				break
			}
			if time.Since(erased) > 10*time.Second {
				b.Fatalf("n2 still hands out the erased token after %s", time.Since(erased))
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(erased))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkLeaderFailover kills the etcd leader b.N times (restarting it
// after each round) during a stream of new tokens from 4 callers on node
// n1, and measures how long after each kill the first write succeeds.
// Every acknowledged token must resolve on node n2 afterwards. Issue 15's
// target: writes back within 3 s, no acknowledged write lost over 5 kills
// (-benchtime=5x).
func BenchmarkLeaderFailover(b *testing.B) {
	// The outbox and takeover loops log each failed attempt while the
	// leader is away; the benchmark's figures are what it reports.
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	c := etcdtest.Start(b)
	ctx := context.Background()
	prefix, keys := freshPrefix(), storetest.Keyring()
	n1 := newMap(b, openStore(b, c, prefix, "n1"), keys, &storetest.Auditor{})
	n2 := newMap(b, openStore(b, c, prefix, "n2"), keys, nil)
	var backs []time.Duration
	acked := map[string]string{} // address → token
	b.ResetTimer()
	for round := range b.N {
		back, got := failoverRound(b, c, n1, round)
		backs = append(backs, back)
		for addr, tok := range got {
			acked[addr] = tok
		}
	}
	b.StopTimer()
	lost := 0
	for addr, tok := range acked {
		if e, err := n2.Resolve(ctx, tok); err != nil || e.Original != addr {
			lost++
		}
	}
	slices.Sort(backs)
	b.ReportMetric(float64(backs[len(backs)-1].Milliseconds()), "max-back-ms")
	b.ReportMetric(float64(backs[len(backs)/2].Milliseconds()), "p50-back-ms")
	b.ReportMetric(float64(len(acked)), "acked")
	b.ReportMetric(float64(lost), "lost")
	if lost > 0 {
		b.Errorf("%d acknowledged tokens do not resolve on the other node", lost)
	}
}

// failoverRound streams new tokens, kills the leader, waits for writes to
// come back, stops, and restarts the killed member. It returns how long
// writes were away and the acknowledged tokens.
func failoverRound(b *testing.B, c *etcdtest.Cluster, m tokenMap, round int) (time.Duration, map[string]string) {
	ctx := context.Background()
	var mu sync.Mutex
	acked := map[string]string{}
	var killed, back time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				addr := fmt.Sprintf("r%d-w%d-%d@example.com", round, w, i)
				iss, err := m.Tokenize(ctx, addr, "")
				mu.Lock()
				if err == nil {
					acked[addr] = iss.Address
					if !killed.IsZero() && back.IsZero() {
						back = time.Now()
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	leader := c.Leader(b, 10*time.Second)
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	c.Members[leader].Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		done := !back.IsZero()
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	c.Restart(b, leader)
	if back.IsZero() {
		b.Fatalf("round %d: no write succeeded within 10 s of the leader's kill", round)
	}
	return back.Sub(killed), acked
}

// tokenMap is what a failover round uses of the map.
type tokenMap interface {
	Tokenize(ctx context.Context, address, displayName string) (tokenize.Issued, error)
}
