package smtp

import (
	"context"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

// BenchmarkInboundStore measures the inbound route with known senders
// (the common case) on the two store backends in one run: a bbolt file,
// and a 3-member etcd cluster on loopback (which shares the 2 cores).
// Issue 15's target: etcd ≥ 0.95 × bbolt.
//
//	go test -run '^$' -bench BenchmarkInboundStore -benchtime 4000x ./smtp/
func BenchmarkInboundStore(b *testing.B) {
	b.Run("store=bbolt", func(b *testing.B) {
		benchKnown(b, func(o *harnessOpts) { o.boltStore = true })
	})
	b.Run("store=etcd", func(b *testing.B) {
		c := etcdtest.Start(b)
		s, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: c.Endpoints(),
			Tenant: "bench", NodeID: "n1", DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchKnown(b, func(o *harnessOpts) { o.store = s })
	})
}

// benchKnown runs 20 parallel sessions of one known sender's messages.
func benchKnown(b *testing.B, store func(*harnessOpts)) {
	h := newHarness(b, func(o *harnessOpts) {
		o.limits.MaxConnections, o.limits.MaxConnectionsPerIP, o.limits.DownstreamPoolSize = 200, 200, 8
		store(o)
	})
	body := crlf("From: Jane <jane.doe@example.com>\nTo: support@company.example\nSubject: order\n\n" +
		"Please write to jane.doe@example.com.\n")
	b.SetParallelism(10) // 20 sessions on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		for pb.Next() {
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			c.must("250", "RCPT TO:<support@company.example>")
			if r := c.data(body); r[:3] != "250" {
				b.Fatalf("DATA: %s", r)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
