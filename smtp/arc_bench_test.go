package smtp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/mailauth"
)

// BenchmarkInboundARC measures the inbound route, messages per second over
// 20 parallel loopback sessions, with the authentication check on
// (SPF, DKIM, DMARC against a loopback DNS server) in every case, and ARC:
//
//   - off: no chain on the message, no seal (the route before ARC);
//   - verify: the message carries a gateway's ARC set, which is verified
//     (two key look-ups, two signatures) and trusted; no seal;
//   - seal: no chain, our seal (two RSA-2048 signatures per message);
//   - on: both, the route as issue 16 configures it.
//
// The message is a customer's 1 KB reply, DKIM-signed (Ed25519). -count
// runs the four in turn, so a shared machine's noise spreads over all.
//
//	go test -run '^$' -bench BenchmarkInboundARC -benchtime 2000x -count 3 ./smtp/
func BenchmarkInboundARC(b *testing.B) {
	for _, mode := range []string{"off", "verify", "seal", "on"} {
		b.Run("arc="+mode, func(b *testing.B) { benchInboundARC(b, mode) })
	}
}

func benchInboundARC(b *testing.B, mode string) {
	z := authDNS(b)
	custKey := newEd25519(b)
	publishDKIM(b, z, "example.com", "sel", custKey.Public())
	key := arcTestKey(b)
	publishDKIM(b, z, "gw.example", "arc", key.Public())
	msg := dkimSign(b, custKey, "example.com", "sel", crlf("From: Jane <jane.doe@example.com>\nTo: support@company.example\n"+
		"Subject: order\nDate: Mon, 02 Jun 2025 10:00:00 +0000\nMessage-ID: <bench@example.com>\n\n"+
		strings.Repeat("Please write to jane.doe@example.com about my order, thanks.\n", 16)))
	if mode == "verify" || mode == "on" {
		s := mailauth.ARCSealer{Domain: "gw.example", Selector: "arc", Key: key}
		seal, err := s.Seal(context.Background(), nil, "gw.example; dkim=pass header.d=example.com", strings.NewReader(msg))
		if err != nil {
			b.Fatal(err)
		}
		msg = seal.Fields + msg
	}
	h := newHarness(b, func(o *harnessOpts) {
		o.limits.MaxConnections, o.limits.MaxConnectionsPerIP, o.limits.DownstreamPoolSize = 200, 200, 8
		// A shared machine: no timeout may end a run (the figures, not the
		// limits, are measured here).
		o.limits.DownstreamTimeout, o.limits.DataTimeout = time.Minute, time.Minute
		o.limits.ReadTimeout, o.limits.WriteTimeout = time.Minute, time.Minute
		o.auth = &AuthCheck{Resolver: mailauth.NewResolver(z.Addr, 2*time.Second), TrustedARCSealers: []string{"gw.example"}}
		if mode == "seal" || mode == "on" {
			o.auth.ARCSeal = &mailauth.ARCSealer{Domain: "company.example", Selector: "arc1", Key: key}
		}
	})
	b.SetParallelism(10) // 20 sessions on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := h.dial(h.in)
		_ = c.conn.SetDeadline(time.Now().Add(30 * time.Minute))
		c.must("250", "EHLO "+authHelo)
		for pb.Next() {
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			c.must("250", "RCPT TO:<support@company.example>")
			if r := c.data(msg); r[:3] != "250" {
				b.Fatalf("DATA: %s", r)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if mode == "on" && !strings.Contains(h.ds.Stats().Messages[0], "ARC-Seal: i=2;") {
		b.Fatalf("not sealed as i=2:\n%s", h.ds.Stats().Messages[0])
	}
}
