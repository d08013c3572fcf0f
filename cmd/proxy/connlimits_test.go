package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// greeting dials addr and returns the server's first reply line; the
// connection stays open until the test ends.
func greeting(t *testing.T, addr net.Addr) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the greeting: %v", err)
	}
	return line
}

// TestInboundFloodLeavesOutboundOpen (issue 18 item 2): with the inbound
// route full (its total limit reached, then refused with 421), the
// outbound route still greets the CRM: each route counts its own
// connections (DESIGN.md invariant 5). The limits come from the smtp
// section, as in a configuration written before routes had their own.
func TestInboundFloodLeavesOutboundOpen(t *testing.T) {
	f, _ := newReloadFixture(t)
	f.write(oneMailbox, "127.0.0.1:0", "max_connections: 3, max_connections_per_ip: 3")
	if err := f.rl.reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.rs.listen(f.rl.current()); err != nil {
		t.Fatal(err)
	}
	f.rs.serve()
	for range 3 {
		if g := greeting(t, f.rs.in.Addr()); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("inbound within its limit: %q", g)
		}
	}
	if g := greeting(t, f.rs.in.Addr()); !strings.HasPrefix(g, "421 4.7.0 ") {
		t.Fatalf("inbound over its limit: %q, want 421 4.7.0", g)
	}
	for i := range 3 {
		if g := greeting(t, f.rs.out.Addr()); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("outbound connection %d during the inbound flood: %q", i+1, g)
		}
	}
}
