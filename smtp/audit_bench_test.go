package smtp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// BenchmarkInboundAudit measures the inbound route, messages per second
// over parallel loopback sessions, with auditing off and on (a real trail,
// fdatasync per batch, as in production), for known senders (the common
// case: no record is written) and for a new sender per message (each
// creates a token, whose creation record is committed with it and moved
// to the trail in the background).
// Issue 5's budget: auditing costs the routes at most 10 %.
//
//	go test -run '^$' -bench BenchmarkInboundAudit -benchtime 2000x ./smtp/
func BenchmarkInboundAudit(b *testing.B) {
	for _, senders := range []string{"known", "new"} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("senders=%s/audit=%t", senders, on), func(b *testing.B) {
				benchInbound(b, senders == "new", on)
			})
		}
	}
}

func benchInbound(b *testing.B, newSenders, auditOn bool) {
	h := newHarness(b, func(o *harnessOpts) {
		o.limits.MaxConnections, o.limits.MaxConnectionsPerIP, o.limits.DownstreamPoolSize = 200, 200, 8
		if !auditOn {
			return
		}
		trail, err := audit.Open(context.Background(), audit.Options{Path: filepath.Join(b.TempDir(), "audit.jsonl"), Sync: os.Getenv("BENCH_AUDIT_SYNC") != "false"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { trail.Close(context.Background()) })
		o.createAudit = compliance.MapAudit{Log: trail}
		o.boltStore = true // the cost measured includes the map's fsyncs
	})
	var n atomic.Int64
	body := crlf("From: Jane <jane.doe@example.com>\nTo: support@company.example\nSubject: order\n\n" +
		"Please write to jane.doe@example.com.\n")
	b.SetParallelism(10) // 20 sessions on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		for pb.Next() {
			from := "jane.doe@example.com"
			if newSenders {
				from = fmt.Sprintf("customer%d@example.com", n.Add(1))
			}
			c.must("250", "MAIL FROM:<%s>", from)
			c.must("250", "RCPT TO:<support@company.example>")
			if r := c.data(body); r[:3] != "250" {
				b.Fatalf("DATA: %s", r)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
