package smtp

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// routeListener registers every accepted connection with its route, so
// that a shutdown can find the idle ones and each session has an ID that
// survives STARTTLS (go-smtp starts a new Session after it).
type routeListener struct {
	net.Listener
	r *Route
}

func (l *routeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &routeConn{Conn: c, r: l.r, id: newSessionID(), opened: time.Now()}
	l.r.mu.Lock()
	draining := l.r.draining
	if !draining {
		l.r.conns[rc] = struct{}{}
	}
	l.r.mu.Unlock()
	if draining {
		rc.Close()
		return rc, nil // go-smtp's first write fails and it drops the conn
	}
	l.r.opts.Metrics.ConnectionOpened(l.r.opts.Name)
	return rc, nil
}

// routeConn is an accepted connection with the state a shutdown needs.
type routeConn struct {
	net.Conn
	r      *Route
	id     string
	opened time.Time

	gen *generation // the generation serving it; under r.mu
	// end is when the session's time (max_session_duration) is up; zero:
	// no limit. Set by handoff before go-smtp sees the connection.
	end time.Time
	// atEnd: the read deadline in force is end, not a timeout's.
	atEnd atomic.Bool
	// timedOut: a read deadline passed and the connection was closed.
	timedOut atomic.Bool

	mu   sync.Mutex
	busy bool         // a transaction is under way
	sc   *gosmtp.Conn // set by the first session
	once sync.Once
}

// Close closes the connection and unregisters it (idempotent).
func (c *routeConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.r.mu.Lock()
		_, registered := c.r.conns[c]
		delete(c.r.conns, c)
		if c.gen != nil {
			c.r.releaseLocked(c.gen)
		}
		c.r.mu.Unlock()
		if registered {
			c.r.opts.Metrics.ConnectionClosed(c.r.opts.Name)
		}
	})
	return err
}

// setBusy marks a transaction under way. When it ends while the route
// drains, the connection is closed: the reply was already written.
func (c *routeConn) setBusy(busy bool) {
	c.r.mu.Lock()
	c.busy = busy
	draining := c.r.draining
	c.r.mu.Unlock()
	if !busy && draining {
		c.closeWith421(c.r.opts.Hostname)
	}
}

// closeWith421 tells an idle client we are going away (RFC 5321 §3.8) and
// closes. go-smtp is blocked reading the next command, so writing here
// does not interleave with its replies; a TLS connection is written
// through its tls.Conn.
func (c *routeConn) closeWith421(host string) {
	c.closeWithReply("421 4.3.2 %s Service shutting down, try again later\r\n", host)
}

// closeWithReply writes one reply line (through TLS when the session
// started it) and closes.
func (c *routeConn) closeWithReply(format, host string) {
	var w net.Conn = c.Conn
	c.mu.Lock()
	if c.sc != nil {
		if tc, ok := c.sc.Conn().(*tls.Conn); ok {
			w = tc
		}
	}
	c.mu.Unlock()
	_ = w.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	fmt.Fprintf(w, format, host)
	c.Close()
}

// Read ends the connection when the client lets a read deadline pass
// (read_timeout per command line, data_timeout for DATA, or the end of
// max_session_duration): a 421 (RFC 5321 §4.5.3.2 leaves the choice of
// closing to the server), then close. Left to go-smtp, a deadline passing
// mid-line ran the partial line as a command, so a client trickling a byte
// at a time was never cut off, and a slow DATA got a reply blaming the
// next hop, after which the rest of its data was read as commands.
func (c *routeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && c.timedOut.CompareAndSwap(false, true) {
		if c.atEnd.Load() {
			c.closeWithReply("421 4.4.2 %s Session time limit exceeded\r\n", c.r.opts.Hostname)
		} else {
			c.closeWithReply("421 4.4.2 %s Timeout waiting for the client, closing connection\r\n", c.r.opts.Hostname)
		}
	}
	return n, err
}

// SetReadDeadline caps the deadline go-smtp sets for each command line
// (read_timeout) at the end of the session's time, so the read that
// passes it ends the connection in Read. After STARTTLS go-smtp sets it
// on the tls.Conn, which passes it here.
func (c *routeConn) SetReadDeadline(t time.Time) error {
	capped := !c.end.IsZero() && (t.IsZero() || t.After(c.end))
	if capped {
		t = c.end
	}
	c.atEnd.Store(capped)
	return c.Conn.SetReadDeadline(t)
}

// setDataDeadline sets the read deadline of a DATA or BDAT transfer
// (data_timeout) uncapped: a message under way when the session's time
// is up is read to its end and answered, and the next command line finds
// the time up. BDAT chunks are announced by command lines, so a BDAT
// transfer can end between two chunks.
func (c *routeConn) setDataDeadline(t time.Time) error {
	c.atEnd.Store(false)
	return c.Conn.SetReadDeadline(t)
}

// setDataDeadline is routeConn.setDataDeadline for a session without a
// routeConn too (tests that bypass the listener).
func (s *session) setDataDeadline(t time.Time) {
	if s.conn != nil {
		_ = s.conn.setDataDeadline(t)
		return
	}
	_ = s.c.Conn().SetReadDeadline(t)
}

func (c *routeConn) setSMTPConn(sc *gosmtp.Conn) {
	c.mu.Lock()
	c.sc = sc
	c.mu.Unlock()
}

// connOf finds the routeConn under a go-smtp connection (it may be wrapped
// by tls.Server after STARTTLS).
func connOf(sc *gosmtp.Conn) *routeConn {
	nc := sc.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	rc, _ := nc.(*routeConn)
	return rc
}

// newSessionID returns 12 hex characters: enough to find one session's
// log lines among millions, short enough to read over the phone.
func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
