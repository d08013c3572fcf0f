package smtp

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
)

// reloadDeps are what the reload tests build new configurations from: the
// harness's map, a rewriter like its own, and a logger into its log.
func (h *harness) reloadDeps() (*rewrite.Rewriter, *slog.Logger) {
	internal := func(d string) bool { return d == "company.example" || d == "crm.example" }
	rw := rewrite.NewRewriter(h.m, rewrite.RewriteOptions{Internal: internal})
	return rw, slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// inboundConfig is the harness's inbound configuration with other
// mailboxes and limits, relaying to dsAddr.
func (h *harness) inboundConfig(mailboxes map[string]string, limits policy.SMTP, dsAddr string) *RouteConfig {
	h.t.Helper()
	rw, log := h.reloadDeps()
	c, err := NewInboundConfig(InboundOptions{Route: RouteOptions{Hostname: "mx.test", Limits: limits,
		Downstream: newDS(h.t, dsAddr, log, func(c *downstream.Config) { c.PoolSize = limits.DownstreamPoolSize })},
		Map: h.m, Rewriter: rw, Mailboxes: mailboxes, LocalCase: address.LocalFold,
		Internal: func(d string) bool { return d == "company.example" || d == "crm.example" }})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// outboundConfig is an outbound configuration with AUTH users only.
func (h *harness) outboundConfig(users map[string]string) *RouteConfig {
	h.t.Helper()
	rw, log := h.reloadDeps()
	c, err := NewOutboundConfig(OutboundOptions{Route: RouteOptions{Hostname: "relay.test", Limits: testLimits(),
		Downstream: newDS(h.t, h.dsAddr, log, nil)}, Users: users,
		Networks:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		AllowedDomains: map[string]bool{"company.example": true},
		PublicOf:       map[string]string{"support@crm.example": "support@company.example"},
		Map:            h.m, Rewriter: rw, LocalCase: address.LocalFold, AuthFailureDelay: -1})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// current is the route's configuration for new connections.
func (r *Route) current() *RouteConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen.cfg
}

func (r *Route) liveGenCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.gens)
}

// TestReloadInboundKeepsSessionsUnderWay: sessions opened before a reload,
// one after RCPT and one in the middle of DATA, finish with 250 under the
// old configuration (old mailboxes, old limits, old downstream), even for a
// later transaction; a new session sees the new one. The old downstream
// drains: its connections are not pooled again.
func TestReloadInboundKeepsSessionsUnderWay(t *testing.T) {
	h := newHarness(t, nil)
	afterRcpt := h.dial(h.in)
	afterRcpt.must("250", "EHLO mail.example.com")
	afterRcpt.must("250", "MAIL FROM:<jane.doe@example.com>")
	afterRcpt.must("250", "RCPT TO:<support@company.example>")
	midData := h.dial(h.in)
	midData.must("250", "EHLO mail.example.com")
	midData.must("250", "MAIL FROM:<bob.roe@example.org>")
	midData.must("250", "RCPT TO:<support@company.example>")
	midData.must("354", "DATA")
	midData.write("From: bob.roe@example.org\r\nSubject: half\r\n\r\nfirst half\r\n")

	oldDown := h.in.current().downstream
	ds2 := &downstreamtest.Sink{}
	limits := testLimits()
	limits.MaxMessageBytes = 2 << 20
	next := h.inboundConfig(map[string]string{"support@company.example": "support@crm.example",
		"sales@company.example": "sales@crm.example"}, limits, downstreamtest.Start(t, ds2, nil))
	if err := h.in.Reload(next); err != nil {
		t.Fatal(err)
	}
	oldDown.Drain()

	afterRcpt.must("550 5.7.1", "RCPT TO:<sales@company.example>")
	if r := afterRcpt.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("session after RCPT: %s", r)
	}
	midData.write("second half\r\n.\r\n")
	if r := midData.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("session in DATA: %s", r)
	}
	if old, nw := len(h.ds.Stats().Messages), len(ds2.Stats().Messages); old != 2 || nw != 0 {
		t.Fatalf("old downstream got %d messages, new %d; want 2, 0", old, nw)
	}

	c := h.dial(h.in)
	if ehlo := c.must("250", "EHLO mail.example.com"); !strings.Contains(ehlo, "SIZE 2097152") {
		t.Errorf("new session's EHLO lacks the new size:\n%s", ehlo)
	}
	c.must("250", "MAIL FROM:<carol@customer.example>")
	c.must("250", "RCPT TO:<sales@company.example>")
	if r := c.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("new session: %s", r)
	}
	if n := len(ds2.Stats().Messages); n != 1 {
		t.Fatalf("new downstream got %d messages", n)
	}

	// The old connection keeps its configuration to its end, on a fresh
	// downstream connection: the drained pool kept none.
	dialed := h.ds.Stats().Sessions
	if ehlo := afterRcpt.must("250", "EHLO mail.example.com"); !strings.Contains(ehlo, "SIZE 1048576") {
		t.Errorf("old session's EHLO after the reload:\n%s", ehlo)
	}
	afterRcpt.must("250", "MAIL FROM:<jane.doe@example.com>")
	afterRcpt.must("550 5.7.1", "RCPT TO:<sales@company.example>")
	afterRcpt.must("250", "RCPT TO:<support@company.example>")
	if r := afterRcpt.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("old session, second transaction: %s", r)
	}
	if n := h.ds.Stats().Sessions; n != dialed+1 {
		t.Errorf("old downstream: %d connections after the drain, want %d (one fresh dial)", n, dialed+1)
	}
	if n := oldDown.Idle(); n != 0 {
		t.Errorf("drained downstream pools %d connections", n)
	}

	// Once the old connections end, their generation is forgotten.
	afterRcpt.must("221", "QUIT")
	midData.must("221", "QUIT")
	deadline := time.Now().Add(5 * time.Second)
	for h.in.liveGenCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d generations live after the old connections closed", h.in.liveGenCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadOutboundPassword: a changed password applies to connections
// opened after the reload; an authenticated transaction under way, and a
// connection opened before, keep the old one.
func TestReloadOutboundPassword(t *testing.T) {
	oldHash, err := HashPassword("old secret")
	if err != nil {
		t.Fatal(err)
	}
	newHash, err := HashPassword("new secret")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *harnessOpts) {
		o.users = map[string]string{"crm": oldHash}
		o.networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	plain := func(pw string) string { return base64.StdEncoding.EncodeToString([]byte("\x00crm\x00" + pw)) }
	const msg = "From: Support <support@crm.example>\nTo: desk@company.example\nSubject: hi\n\nhello\n"

	busy := h.dial(h.out)
	busy.must("250", "EHLO crm.example")
	busy.startTLS(h, "relay.test")
	busy.must("250", "EHLO crm.example")
	busy.must("235", "AUTH PLAIN %s", plain("old secret"))
	busy.must("250", "MAIL FROM:<support@crm.example>")
	busy.must("250", "RCPT TO:<desk@company.example>")
	early := h.dial(h.out)
	early.must("250", "EHLO crm.example")

	if err := h.out.Reload(h.outboundConfig(map[string]string{"crm": newHash})); err != nil {
		t.Fatal(err)
	}

	if r := busy.data(crlf(msg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("authenticated transaction under way: %s", r)
	}
	early.startTLS(h, "relay.test")
	early.must("250", "EHLO crm.example")
	early.must("235", "AUTH PLAIN %s", plain("old secret"))

	c := h.dial(h.out)
	c.must("250", "EHLO crm.example")
	c.startTLS(h, "relay.test")
	c.must("250", "EHLO crm.example")
	c.must("535 5.7.8", "AUTH PLAIN %s", plain("old secret"))
	c.must("235", "AUTH PLAIN %s", plain("new secret"))
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<desk@company.example>")
	if r := c.data(crlf(msg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("new session: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 2 {
		t.Fatalf("downstream got %d messages", n)
	}
}

// TestReloadShutdownWaitsForOldGeneration: a shutdown waits for the
// transactions of a superseded configuration too, and refuses reloads.
func TestReloadShutdownWaitsForOldGeneration(t *testing.T) {
	h := newHarness(t, nil)
	busy := h.dial(h.in)
	busy.must("250", "EHLO mail.example.com")
	busy.must("250", "MAIL FROM:<jane.doe@example.com>")
	busy.must("250", "RCPT TO:<support@company.example>")
	busy.must("354", "DATA")
	busy.write(crlf(customerMsg))
	mailboxes := map[string]string{"support@company.example": "support@crm.example"}
	if err := h.in.Reload(h.inboundConfig(mailboxes, testLimits(), h.dsAddr)); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.in.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("shutdown returned before the old transaction ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := h.in.Reload(h.inboundConfig(mailboxes, testLimits(), h.dsAddr)); err == nil {
		t.Error("reload while shutting down succeeded")
	}
	finishDuringShutdown(t, h, busy, done, "old transaction")
}

// TestReloadOtherRouteRefused: a route takes only its own kind of
// configuration.
func TestReloadOtherRouteRefused(t *testing.T) {
	h := newHarness(t, nil)
	hash, err := HashPassword("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.in.Reload(h.outboundConfig(map[string]string{"crm": hash})); err == nil {
		t.Fatal("the inbound route took an outbound configuration")
	}
}

// TestConnLimiterSetLimits: new limits apply to the next connections and
// close none.
func TestConnLimiterSetLimits(t *testing.T) {
	l := NewConnLimiter(1, 1)
	if r := l.acquire("192.0.2.1"); r != "" {
		t.Fatal(r)
	}
	if r := l.acquire("192.0.2.1"); r != RefuseTotal {
		t.Fatalf("over the limit: %q", r)
	}
	l.SetLimits(3, 2)
	if r := l.acquire("192.0.2.1"); r != "" {
		t.Fatalf("after raising the limits: %q", r)
	}
	if r := l.acquire("192.0.2.1"); r != RefusePerIP {
		t.Fatalf("over the new per-IP limit: %q", r)
	}
	l.SetLimits(1, 1)
	if n := l.Open(); n != 2 {
		t.Fatalf("open = %d after lowering the limits, want 2", n)
	}
	if r := l.acquire("192.0.2.2"); r != RefuseTotal {
		t.Fatalf("over the lowered limit: %q", r)
	}
}
