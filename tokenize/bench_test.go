package tokenize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
)

// Targets (issue 2): Tokenize of a known address and Resolve ≥ 300k ops/s
// on one core (run with -cpu 1); new durable tokens ≥ 10k/s with 50
// concurrent callers; opening a map of 1M tokens < 1 s.

func BenchmarkTokenizeKnown(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"cached", 0}, {"store", -1}} {
		b.Run(bc.name, func(b *testing.B) { benchTokenizeKnown(b, bc.size) })
	}
}

func benchTokenizeKnown(b *testing.B, cacheSize int) {
	ctx := context.Background()
	m := openTestMap(b, tokenize.Options{KnownCacheSize: cacheSize})
	addrs := benchAddresses(m, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Tokenize(ctx, addrs[i%len(addrs)], ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	m := openTestMap(b, tokenize.Options{})
	addrs := benchAddresses(m, 1000)
	tokens := make([]string, len(addrs))
	for i, a := range addrs {
		iss, _ := m.Tokenize(ctx, a, "")
		tokens[i] = iss.Address
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Resolve(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkTokenizeNew50 creates b.N new durable tokens from 50 concurrent
// callers, as 50 SMTP sessions would.
func BenchmarkTokenizeNew50(b *testing.B) {
	ctx := context.Background()
	m := openTestMap(b, tokenize.Options{})
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := m.Tokenize(ctx, fmt.Sprintf("new%d@example.com", i), "Some Name"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkOpen1M measures opening a map of one million tokens and
// resolving one of them: bbolt maps the file, nothing is scanned. With
// TOKENPROXY_COLD=1 (root only) the page cache is dropped before each
// open, as after a reboot.
func BenchmarkOpen1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.db")
	m := reopenTestMap(b, path, testKeyring(1), tokenize.Options{})
	probe := bulkLoad(b, m, 1_000_000)
	m.close()
	cold := os.Getenv("TOKENPROXY_COLD") == "1"
	b.ResetTimer()
	for range b.N {
		if cold {
			b.StopTimer()
			dropPageCache(b)
			b.StartTimer()
		}
		db, err := boltstore.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		mm, err := tokenize.NewMap(db, m.keys, tokenize.Options{Format: testFormat, Tenant: "test"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mm.Resolve(context.Background(), probe); err != nil {
			b.Fatal(err)
		}
		mm.Close()
		db.Close()
	}
	if info, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(info.Size())/(1<<20), "file-MiB")
	}
}

func dropPageCache(b *testing.B) {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		b.Skipf("cannot drop the page cache: %v", err)
	}
}

// bulkLoad writes n tokens in large transactions (the benchmark's setup,
// not the measured path) and returns one of them.
func bulkLoad(b *testing.B, m *testMap, n int) string {
	const per = 50_000
	var probe string
	for done := 0; done < n; done += per {
		err := m.store.Update(context.Background(), func(tx tokenize.Tx) error {
			for i := done; i < done+per && i < n; i++ {
				local, rec, err := m.RecordFor(fmt.Sprintf("bulk%d@example.com", i))
				if err != nil {
					return err
				}
				if err := tx.PutToken(local, rec); err != nil {
					return err
				}
				probe = local
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return probe
}

func benchAddresses(m *testMap, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("Customer.%d@Example-%d.com", i, i%37)
		if _, err := m.Tokenize(context.Background(), addrs[i], "Name"); err != nil {
			panic(err)
		}
	}
	return addrs
}
