package downstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

// deadHost is a host:port where nothing listens (a closed port).
func deadHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// badHost accepts connections and, per connection, greets with 421 or
// says nothing (a hung server: the client's timeout). It counts them.
func badHost(t *testing.T, greeting string) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Go(func() {
				defer c.Close()
				if greeting != "" {
					fmt.Fprintf(c, "%s\r\n", greeting)
				}
				_, _ = c.Read(make([]byte, 512)) // until the client gives up
			})
		}
	})
	return l.Addr().String(), &n
}

// events records Config.Observe.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) observe(host, result string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, host+" "+result)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.got, s)
}

// TestDownstreamFailover: a dead first host (closed port, 421 greeting,
// no answer until the timeout) hands over to the second, which gets the
// message; the first is then tried last for a while, so the next message
// does not wait for it again. Each host has its own metrics label.
func TestDownstreamFailover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		first   func(t *testing.T) (string, *atomic.Int32)
		outcome string
	}{
		{"closed port", func(t *testing.T) (string, *atomic.Int32) { return deadHost(t), nil }, "unreachable"},
		{"421 greeting", func(t *testing.T) (string, *atomic.Int32) { return badHost(t, "421 4.3.2 busy, try later") }, "reply"},
		// A 554 greeting refuses this client, not the message (RFC 5321
		// §3.1): the next host is tried, and no 5xx reaches the sender.
		{"554 greeting", func(t *testing.T) (string, *atomic.Int32) { return badHost(t, "554 5.7.1 no service") }, "reply"},
		{"timeout", func(t *testing.T) (string, *atomic.Int32) { return badHost(t, "") }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, tries := tc.first(t)
			b := &downstreamtest.Sink{}
			second := downstreamtest.Start(t, b, nil)
			ev := &events{}
			d := newDS(t, "", nil, func(c *Config) {
				c.Address, c.Addresses, c.Observe = "", []string{first, second}, ev.observe
			})
			ctx := dsCtx(t)
			for i := range 3 {
				if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if n := len(b.Stats().Messages); n != 3 {
				t.Fatalf("second host got %d messages: want 3", n)
			}
			if tries != nil && tries.Load() != 1 {
				t.Fatalf("first host tried %d times: want once (then it rests)", tries.Load())
			}
			for _, want := range []string{first + " " + tc.outcome, first + " failover", second + " connected", second + " delivered"} {
				if !ev.has(want) {
					t.Errorf("no event %q in %v", want, ev.got)
				}
			}
		})
	}
}

// TestDownstreamAllHostsDown: every host failing is one temporary error,
// a 5xx greeting included.
func TestDownstreamAllHostsDown(t *testing.T) {
	refusing, _ := badHost(t, "554 5.7.1 no service")
	d := newDS(t, "", nil, func(c *Config) { c.Address, c.Addresses = "", []string{deadHost(t), refusing} })
	_, err := d.Begin(dsCtx(t), "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 554)
}

// loopbackPair listens on the same port of 127.0.0.2 and 127.0.0.3, so
// that two MX hosts share the configured MX port; the second listener is
// closed again when live is false (a dead host).
func loopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.3", strconv.Itoa(port)))
		a.Close()
		if err == nil {
			b.Close()
			return port
		}
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	return 0
}

// startSinkAt runs a go-smtp sink on addr with the TLS configuration.
func startSinkAt(t *testing.T, b *downstreamtest.Sink, addr string, ca *testCA, name string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	downstreamtest.Serve(t, b, l, ca.serverTLS(name))
}

// TestDownstreamMX: the MX hosts of the domain, found through a loopback
// DNS server and mailauth's resolver, are tried by preference: the first
// (preference 10) is dead, the second (20) gets the message over TLS
// verified against its MX host name.
func TestDownstreamMX(t *testing.T) {
	dns := dnstest.Start(t)
	dns.MX("crm.test", 20, "mx2.crm.test")
	dns.MX("crm.test", 10, "mx1.crm.test")
	dns.A("mx1.crm.test", "127.0.0.2")
	dns.A("mx2.crm.test", "127.0.0.3")
	port := loopbackPort(t)
	ca := newTestCA(t)
	b := &downstreamtest.Sink{RequireTLS: true}
	startSinkAt(t, b, net.JoinHostPort("127.0.0.3", strconv.Itoa(port)), ca, "mx2.crm.test")
	ev := &events{}
	d := newDS(t, "", nil, func(c *Config) {
		c.Address, c.MX, c.MXPort, c.Resolver = "", "crm.test", port, mailauth.NewResolver(dns.Addr, time.Second)
		c.TLS, c.CAFile, c.Observe = TLSVerify, ca.file, ev.observe
	})
	if err := send(dsCtx(t), d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); len(st.Messages) != 1 || !st.TLSMail[0] {
		t.Fatalf("mx2 got %d messages (TLS %v): want 1 over TLS", len(st.Messages), st.TLSMail)
	}
	mx1 := net.JoinHostPort("mx1.crm.test", strconv.Itoa(port))
	if !ev.has(mx1+" failover") || !ev.has(net.JoinHostPort("mx2.crm.test", strconv.Itoa(port))+" delivered") {
		t.Fatalf("events %v: want mx1 failed over, mx2 delivered", ev.got)
	}
}

// TestDownstreamMXFallbacks: a domain without MX records is its own mail
// host (RFC 5321 §5.1); a null MX (RFC 7505) and a failing DNS are
// temporary failures that send nothing.
func TestDownstreamMXFallbacks(t *testing.T) {
	dns := dnstest.Start(t)
	dns.A("crm.test", "127.0.0.3")
	dns.MX("null.test", 0, ".")
	dns.A("null.test", "127.0.0.3")
	dns.ServFail("broken.test")
	port := loopbackPort(t)
	b := &downstreamtest.Sink{}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.3", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	downstreamtest.Serve(t, b, l, nil)
	res := mailauth.NewResolver(dns.Addr, time.Second)
	pool := func(domain string) *Pool {
		return newDS(t, "", nil, func(c *Config) { c.Address, c.MX, c.MXPort, c.Resolver = "", domain, port, res })
	}
	if err := send(dsCtx(t), pool("crm.test"), dsBody, "a@crm.test"); err != nil {
		t.Fatalf("implicit MX: %v", err)
	}
	_, err = pool("null.test").Begin(dsCtx(t), "from@relay.test", nil)
	if wantKind(t, err, ErrTemp, "connect", 0); !errors.Is(err, ErrNullMX) {
		t.Fatalf("null MX: %v", err)
	}
	_, err = pool("broken.test").Begin(dsCtx(t), "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
	if n := len(b.Stats().Messages); n != 1 {
		t.Fatalf("%d messages: want only the implicit MX's", n)
	}
}

// TestOrderMX: lowest preference first; equal preferences in both orders
// over many draws (RFC 5321 §5.1: randomized to spread the load).
func TestOrderMX(t *testing.T) {
	recs := []*net.MX{{Host: "c.", Pref: 20}, {Host: "a.", Pref: 10}, {Host: "b.", Pref: 10}}
	seen := map[string]bool{}
	for range 200 {
		o := orderMX(recs)
		if o[2].Host != "c." {
			t.Fatalf("order %v %v %v: preference 20 must come last", o[0].Host, o[1].Host, o[2].Host)
		}
		seen[o[0].Host] = true
	}
	if !seen["a."] || !seen["b."] {
		t.Fatalf("equal preferences not shuffled: first hosts seen %v", seen)
	}
}

// TestDownstreamPerHostPools: each host keeps its own idle connections.
func TestDownstreamPerHostPools(t *testing.T) {
	b1, b2 := &downstreamtest.Sink{}, &downstreamtest.Sink{}
	a1, a2 := downstreamtest.Start(t, b1, nil), downstreamtest.Start(t, b2, nil)
	d := newDS(t, "", nil, func(c *Config) { c.Address, c.Addresses = "", []string{a1, a2} })
	ctx := context.Background()
	if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	b1.CloseConns()
	d.markDown(d.static[0]) // as after a failure: the second host serves
	if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	n1, n2 := len(d.static[0].idle), len(d.static[1].idle)
	d.mu.Unlock()
	if n1 != 1 || n2 != 1 || d.Idle() != 2 {
		t.Fatalf("idle %d and %d (total %d): want one per host", n1, n2, d.Idle())
	}
}
