package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// Reloading a route (SIGHUP) without dropping a session.
//
// Everything a reload may change on a route (its limits, its downstream,
// and its policy: mailboxes, users, networks, DKIM, the authentication
// check) is one immutable RouteConfig. The route serves each RouteConfig
// with a go-smtp server of its own, a generation: go-smtp reads its limits
// (SIZE, recipients, line length, timeouts) from a connection's server at
// every command, so a connection must stay with one server for its whole
// life, and a server's fields cannot be changed under it. The route's
// accept loop hands each new connection to the current generation, and
// Reload makes a new one current. A connection, with every session and
// transaction on it, so runs to its end under the configuration it was
// accepted with: a reload never drops, resets or changes a connection
// under way. A generation that is no longer current is forgotten when its
// last connection closes; Shutdown waits for the connections of all of them.

// RouteConfig is what a reload may change on a route: its limits, its
// downstream and its policy. It is immutable once built (NewInboundConfig,
// NewOutboundConfig).
type RouteConfig struct {
	name       string // RouteInbound or RouteOutbound
	limits     policy.SMTP
	downstream *downstream.Pool
	policy     routePolicy
}

func newRouteConfig(name string, ro RouteOptions, p routePolicy) (*RouteConfig, error) {
	if ro.Downstream == nil {
		return nil, fmt.Errorf("smtp: %s route needs a downstream", name)
	}
	return &RouteConfig{name: name, limits: ro.Limits, downstream: ro.Downstream, policy: p}, nil
}

// Reload makes c the configuration of the connections accepted from now
// on; those already open keep theirs to their end. The downstream of the
// configuration replaced is left as it is: drain it (downstream.Pool.Drain)
// once no configuration names it any more.
func (r *Route) Reload(c *RouteConfig) error {
	if c == nil || c.name != r.opts.Name {
		return fmt.Errorf("smtp: %s route: reload with another route's configuration", r.opts.Name)
	}
	g := r.newGeneration(c)
	r.mu.Lock()
	if r.draining {
		r.mu.Unlock()
		return fmt.Errorf("smtp: %s route: reload while shutting down", r.opts.Name)
	}
	old := r.gen
	r.gen = g
	r.gens[g] = struct{}{}
	if old.open == 0 {
		delete(r.gens, old)
	}
	serving := r.serving
	r.mu.Unlock()
	if serving {
		r.startGen(g)
	}
	// Its server stops accepting; its connections go on.
	old.ln.Close()
	return nil
}

// generation is one RouteConfig with the go-smtp server that serves the
// connections accepted under it.
type generation struct {
	cfg     *RouteConfig
	srv     *gosmtp.Server
	ln      *handoffListener
	open    int // connections handed over and not yet closed; under Route.mu
	started sync.Once
}

func (r *Route) newGeneration(c *RouteConfig) *generation {
	return &generation{cfg: c, srv: r.newServer(c), ln: newHandoffListener()}
}

// startGen runs g's server (once). Its Serve returns when g is superseded
// or shut down; its connections are served by go-smtp's own goroutines.
func (r *Route) startGen(g *generation) {
	g.started.Do(func() {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					r.opts.Log.Error("panic in a route's server", "event", "panic", "panic", fmt.Sprint(p))
				}
			}()
			_ = g.srv.Serve(g.ln)
		}()
	})
}

// acceptLoop hands each accepted connection to the current generation
// until the route shuts down. Temporary accept errors (out of file
// descriptors) are retried with a growing pause, as go-smtp and net/http do.
func (r *Route) acceptLoop() error {
	var pause time.Duration
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if r.isDraining() {
				return nil
			}
			if !isTemporary(err) {
				return err
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			r.opts.Log.Warn("accept failed; retrying", "event", "accept_retry", "err", err, "pause", pause.String())
			time.Sleep(pause)
			continue
		}
		pause = 0
		rc, ok := c.(*routeConn)
		if !ok { // every connection comes through routeListener
			c.Close()
			continue
		}
		r.handoff(rc)
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// handoff gives rc to the current generation's server. A reload between
// the choice and the hand-over closes that generation's listener: the
// next current one takes rc.
func (r *Route) handoff(rc *routeConn) {
	for {
		r.mu.Lock()
		if r.draining {
			r.mu.Unlock()
			rc.Close()
			return
		}
		g := r.gen
		g.open++
		rc.gen = g
		if d := g.cfg.limits.MaxSessionDuration; d > 0 {
			rc.end = rc.opened.Add(d)
		}
		r.mu.Unlock()
		select {
		case g.ln.conns <- rc:
			return
		case <-g.ln.done:
			r.mu.Lock()
			rc.gen = nil
			r.releaseLocked(g)
			r.mu.Unlock()
		}
	}
}

// releaseLocked counts a connection of g as closed, and forgets g when it
// was its last and g is no longer current. r.mu is held.
func (r *Route) releaseLocked(g *generation) {
	g.open--
	if g.open <= 0 && g != r.gen {
		delete(r.gens, g)
	}
}

// liveGens lists the generations that may serve connections. r.mu is held.
func (r *Route) liveGens() []*generation {
	gens := make([]*generation, 0, len(r.gens))
	for g := range r.gens {
		gens = append(gens, g)
	}
	return gens
}

// shutdownGens shuts the generations' servers down at once and waits for
// their connections until ctx ends. A server already shut down is no error.
func shutdownGens(ctx context.Context, gens []*generation) error {
	errc := make(chan error, len(gens))
	for _, g := range gens {
		go func() { errc <- g.srv.Shutdown(ctx) }()
	}
	var errs []error
	for range gens {
		if err := <-errc; err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handoffListener is the listener of one generation's server: the route's
// accept loop hands it connections; Close stops its server's Serve, not
// the connections it serves.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close is idempotent: go-smtp closes it on Shutdown after a reload did.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "handoff" }

// SetLimits changes the limits for the connections accepted from now on.
// Connections already open are never closed for it; they count against
// the new limits until they end.
func (l *ConnLimiter) SetLimits(max, perIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.perIP = max, perIP
}
