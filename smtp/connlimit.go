package smtp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons passed to a Listener's onRefuse callback; they are metric labels, so
// they stay few and fixed.
const (
	RefuseTotal = "total"
	RefusePerIP = "per_ip"
)

const (
	// refuseWriteTimeout bounds the 421 write so a client that does not read
	// cannot hold a goroutine and a file descriptor for long.
	refuseWriteTimeout = 2 * time.Second
	// maxRefusing caps the goroutines writing 421 replies at once. Under a
	// connection flood further refused connections are closed without a
	// reply rather than spawning unbounded goroutines.
	maxRefusing = 256
)

// ConnLimiter counts open SMTP connections overall and per client IP. Each
// route has its own limiter, so customers filling the inbound route never
// make the CRM's outbound connections get 421 (DESIGN.md invariant 5).
type ConnLimiter struct {
	max, perIP int
	refusing   atomic.Int32

	mu   sync.Mutex
	open int
	byIP map[string]int
}

// NewConnLimiter returns a limiter allowing at most max open connections in
// total and perIP from one client IP address. A limit <= 0 disables that
// limit; config validation decides whether that is allowed.
func NewConnLimiter(max, perIP int) *ConnLimiter {
	return &ConnLimiter{max: max, perIP: perIP, byIP: make(map[string]int)}
}

// Open returns the number of connections currently counted, for metrics.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Listener wraps inner so that Accept only returns connections within the
// limits. A connection over a limit gets "421 4.7.0 <host> Too many
// connections, try again later" and is closed (RFC 5321 §3.8 and §4.2.3: 421
// "Service not available, closing transmission channel" is the one reply
// after which a server may close first; RFC 3463 4.7.0: temporary, security
// or policy status); onRefuse, if not nil, is then called
// with RefuseTotal or RefusePerIP on the accepting goroutine, so it must be
// quick (a metric increment). The counts are released when the returned
// connection is closed. Client addresses are never logged here.
func (l *ConnLimiter) Listener(inner net.Listener, host string, onRefuse func(reason string)) net.Listener {
	return &limitListener{
		Listener: inner,
		limiter:  l,
		reply:    []byte(fmt.Sprintf("421 4.7.0 %s Too many connections, try again later\r\n", host)),
		onRefuse: onRefuse,
	}
}

// acquire counts a connection from key, or returns the reason it is refused.
func (l *ConnLimiter) acquire(key string) (reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.open >= l.max {
		return RefuseTotal
	}
	if l.perIP > 0 && l.byIP[key] >= l.perIP {
		return RefusePerIP
	}
	l.open++
	l.byIP[key]++
	return ""
}

func (l *ConnLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	// Delete at zero so the map does not grow with every address ever seen.
	if l.byIP[key] <= 1 {
		delete(l.byIP, key)
		return
	}
	l.byIP[key]--
}

type limitListener struct {
	net.Listener
	limiter  *ConnLimiter
	reply    []byte
	onRefuse func(reason string)
}

// Accept returns the next connection within the limits, refusing the others
// without blocking on them.
func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ipKey(c.RemoteAddr())
		reason := ll.limiter.acquire(key)
		if reason == "" {
			return &limitedConn{Conn: c, release: func() { ll.limiter.release(key) }}, nil
		}
		ll.refuse(c)
		if ll.onRefuse != nil {
			ll.onRefuse(reason)
		}
	}
}

// refuse answers 421 and closes c in its own goroutine: a client with a full
// receive window must not stall Accept for everyone else.
func (ll *limitListener) refuse(c net.Conn) {
	l := ll.limiter
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		defer func() { _ = recover() }() // a refusal must never take the process down
		defer c.Close()
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		_, _ = c.Write(ll.reply)
	}()
}

// ipKey returns the client IP of addr without port or IPv6 zone, with
// IPv4-mapped IPv6 addresses folded to IPv4 so a dual-stack listener counts a
// client once. Other address kinds are keyed by their string form.
func ipKey(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return addr.String()
	}
	return ip.Unmap().WithZone("").String()
}

// limitedConn releases its slot in the limiter when closed. It embeds
// net.Conn so it can be wrapped by tls.Server like any other connection.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and releases its count exactly once, however
// many goroutines call it.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
