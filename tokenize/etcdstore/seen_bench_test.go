package etcdstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// BenchmarkLastSeenFlush writes the last-seen times of 500 used tokens
// per op (one flush of the map, MaxBatch tokens per Txn) on a 3-member
// cluster, two ways in one run: apart (seen/<token>/<node>, as etcd
// keeps them) and in-record (the record rewritten, as before). It reports
// what another node's cache loses per token flushed (watch events on t/:
// each drops that token from its known-address cache) and how many times
// a record was rewritten per flush (a new revision of its ciphertext in
// etcd's history each). Run with a fixed count, e.g. -benchtime=10x.
func BenchmarkLastSeenFlush(b *testing.B) {
	const tokens = 500
	c := etcdtest.Start(b)
	for _, v := range []struct {
		name string
		wrap func(*etcdstore.Store) tokenize.Store
	}{
		{"in-record", func(s *etcdstore.Store) tokenize.Store { return seenInRecord{s} }},
		{"apart", func(s *etcdstore.Store) tokenize.Store { return s }},
	} {
		b.Run(v.name, func(b *testing.B) {
			prefix := freshPrefix()
			store := v.wrap(openStore(b, c, prefix, "n1"))
			var drops atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for range openStore(b, c, prefix, "n2").Watch(ctx) {
					drops.Add(1)
				}
			}()
			keys := storetest.Keyring()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			opts := tokenize.Options{Audit: &storetest.Auditor{}, Now: func() time.Time { return now }}
			m := newMapOpts(b, store, keys, opts)
			var addrs []string
			for i := range tokens {
				iss, err := m.Tokenize(ctx, fmt.Sprintf("seen%d@example.com", i), "")
				if err != nil {
					b.Fatal(err)
				}
				addrs = append(addrs, iss.Address)
			}
			m.Close()
			time.Sleep(500 * time.Millisecond) // the creations' watch events pass
			drops.Store(0)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				now = now.Add(2 * time.Hour) // past LastSeenGranularity: each use is noted
				m := newMapOpts(b, store, keys, opts)
				for _, a := range addrs {
					if _, err := m.Resolve(ctx, a); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if err := m.Close(); err != nil { // the flush
					b.Fatal(err)
				}
			}
			b.StopTimer()
			time.Sleep(500 * time.Millisecond)
			b.ReportMetric(float64(drops.Load())/float64(b.N*tokens), "cache-drops/token")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*tokens), "us/token")
			resp, err := c.Client(b).Get(ctx, prefix+"test/t/"+addrs[0][:len(addrs[0])-len("@relay.company.example")])
			if err != nil || len(resp.Kvs) != 1 {
				b.Fatalf("record: %v, %v", resp, err)
			}
			b.ReportMetric(float64(resp.Kvs[0].Version-1)/float64(b.N), "record-rewrites/flush")
		})
	}
}

// seenInRecord is an etcd store whose transactions hide tokenize.SeenTx
// (an anonymous struct keeps the interface's methods only): the map then
// writes last-seen times into the records, as before they were kept apart.
type seenInRecord struct{ *etcdstore.Store }

func (s seenInRecord) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	return s.Store.View(ctx, func(tx tokenize.ReadTx) error { return fn(struct{ tokenize.ReadTx }{tx}) })
}

func (s seenInRecord) Update(ctx context.Context, fn func(tokenize.Tx) error) error {
	return s.Store.Update(ctx, func(tx tokenize.Tx) error { return fn(struct{ tokenize.Tx }{tx}) })
}
