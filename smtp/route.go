package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// Route names.
const (
	RouteInbound  = "inbound"
	RouteOutbound = "outbound"
)

// RouteOptions is what both routes share: the listener's identity, its
// limits, and where it relays. Limits and Downstream are the route's first
// RouteConfig and may change with Route.Reload; the other fields are fixed
// for the route's life.
type RouteOptions struct {
	Name       string      // RouteInbound or RouteOutbound
	Hostname   string      // greeting, EHLO and Received name
	TLS        *tls.Config // STARTTLS; required (see ServerTLSConfig)
	Limits     policy.SMTP // every limit set and positive (policy validates)
	Downstream *downstream.Pool
	Limiter    *ConnLimiter // this route's own, never the other's; nil: no connection limits
	Metrics    *Metrics     // nil: none
	Log        *slog.Logger
	// SpoolDir holds the temporary files of messages too large to hold in
	// memory while they are verified or signed (0600, removed at once);
	// "" means os.TempDir().
	SpoolDir string
	// Audit receives the outbound route's per-message records; nil:
	// none. Token creations on the inbound route are audited by the
	// token map, under the actor this route puts in its context.
	Audit Auditor
}

// routePolicy is what differs between the two routes.
type routePolicy interface {
	// mayMail refuses a transaction the session may not start (TLS, AUTH).
	mayMail(s *session) error
	// checkSender validates the envelope sender at MAIL time.
	checkSender(s *session, from string) error
	// sender returns the downstream envelope sender, at the first
	// accepted recipient (so refused relay attempts create no token).
	sender(ctx context.Context, s *session, from string) (string, error)
	// recipient returns the downstream recipient for to, or a refusal.
	recipient(ctx context.Context, s *session, to string) (string, error)
	// prepare reads what must be known before the rewrite starts, before
	// the downstream DATA; it returns what the rewriter reads instead of
	// src, and a cleanup to run once the message has been relayed.
	prepare(ctx context.Context, s *session, src io.Reader, res *dataResult) (io.Reader, func(), error)
	// rewrite streams the message from src to dst.
	rewrite(ctx context.Context, s *session, dst io.Writer, src io.Reader) (*rewrite.Report, error)
	// commit runs once the message passed every check, before the
	// downstream's final dot: the inbound route makes its new tokens
	// durable there (DESIGN.md invariants 3 and 4).
	commit(ctx context.Context, s *session, res *dataResult) error
	// contentTokens returns, as addresses, the tokens a rewrite resolved
	// in the content (for the audit record); nil on a route that
	// resolves none.
	contentTokens(report *rewrite.Report) []string
	// sealer returns the header fields to prepend to the rewritten message,
	// computed over all of it (a DKIM signature, an ARC set); nil when
	// there are none, and the rewritten message streams to the downstream.
	sealer(res *dataResult) sealFunc
	// authMechanisms and auth implement SMTP AUTH (RFC 4954); a route
	// without AUTH returns nil and errAuthNotHere.
	authMechanisms(s *session) []string
	auth(s *session, mech string) (sasl.Server, error)
}

// sealFunc reads a whole rewritten message and returns the header fields
// to prepend to it.
type sealFunc func(ctx context.Context, msg io.Reader) (sealed, error)

// sealed is what a sealFunc computed: fields (names, values, CRLFs) to
// prepend, and a filter the message goes through first (nil: none), which
// removes fields the seal replaces (mailauth.ARCSeal.StripOld).
type sealed struct {
	fields string
	filter func(msg io.Reader) (io.Reader, error)
}

// Route is one SMTP listener and its sessions.
//
// What a reload may change lives in a RouteConfig, served by a generation
// (see reload.go): each accepted connection is handed to the generation
// current at that moment and keeps it to the end.
type Route struct {
	opts RouteOptions // the fixed part: Limits and Downstream are in gen
	ln   net.Listener
	// auth limits password guessing and bounds the password hashes
	// computed at once, over every generation: each argon2id check may
	// take tens of MiB, and AUTH floods must not exhaust memory. Set by
	// NewOutbound; nil on the inbound route (no AUTH there).
	auth *authLimiter

	// ctx is cancelled when a shutdown's deadline passes: transactions
	// still under way are aborted (the downstream never sees their dot).
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    map[*routeConn]struct{}
	draining bool
	serving  bool                     // Serve has started
	gen      *generation              // where new connections go
	gens     map[*generation]struct{} // gen, and older ones still serving connections
}

func newRoute(opts RouteOptions, c *RouteConfig) (*Route, error) {
	if opts.TLS == nil {
		return nil, errors.New("smtp: route needs TLS")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Log = opts.Log.With("route", opts.Name)
	// Read only through the generation from now on, so a reload cannot be
	// half seen.
	opts.Limits, opts.Downstream = policy.SMTP{}, nil
	r := &Route{opts: opts, conns: map[*routeConn]struct{}{}, gens: map[*generation]struct{}{}}
	r.ctx, r.cancel = context.WithCancel(audit.WithActor(context.Background(), "route:"+opts.Name))
	r.gen = r.newGeneration(c)
	r.gens[r.gen] = struct{}{}
	return r, nil
}

// newServer configures go-smtp for one configuration. Its zero values
// mean unlimited, so every limit is set (DESIGN.md invariant 4).
func (r *Route) newServer(c *RouteConfig) *gosmtp.Server {
	l := c.limits
	s := gosmtp.NewServer(backend{r, c})
	s.Domain = r.opts.Hostname
	s.TLSConfig = r.opts.TLS
	s.MaxMessageBytes = l.MaxMessageBytes
	s.MaxRecipients = l.MaxRecipients
	s.MaxLineLength = l.MaxLineLength
	s.ReadTimeout = l.ReadTimeout
	s.WriteTimeout = l.WriteTimeout
	s.EnableSMTPUTF8 = true // RFC 6531; the rewriter handles UTF-8 headers
	// REQUIRETLS (RFC 8689) is not offered: we cannot promise it for the
	// whole path. BINARYMIME is not offered: the rewriter needs lines.
	s.EnableREQUIRETLS = false
	s.EnableBINARYMIME = false
	// AUTH before STARTTLS reaches our Auth, which answers 530 5.7.0
	// (go-smtp's own answer would be 523); it is never advertised there.
	s.AllowInsecureAuth = true
	s.ErrorLog = log.New(slogWriter{r.opts.Log}, "", 0)
	return s
}

// Listen binds the route's address, so a bad address fails at start.
func (r *Route) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: %s route: listen %s: %w", r.opts.Name, addr, err)
	}
	if r.opts.Limiter != nil {
		ln = r.opts.Limiter.Listener(ln, r.opts.Hostname, r.opts.Metrics.ConnectionRefused)
	}
	r.ln = &routeListener{Listener: ln, r: r}
	return nil
}

// Addr is the bound address (after Listen).
func (r *Route) Addr() net.Addr { return r.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (r *Route) Serve() error {
	r.opts.Log.Info("listening", "event", "listen", "addr", r.ln.Addr().String())
	r.mu.Lock()
	r.serving = true
	g := r.gen
	r.mu.Unlock()
	r.startGen(g)
	return r.acceptLoop()
}

// Shutdown stops accepting, closes idle connections, lets transactions
// under way finish, and when ctx ends aborts those left (their downstream
// transactions end without the final dot: nothing partial is delivered).
// Connections of every generation are waited for.
func (r *Route) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	var idle []*routeConn
	for c := range r.conns {
		if !c.busy {
			idle = append(idle, c)
		}
	}
	gens := r.liveGens()
	r.mu.Unlock()
	for _, c := range idle {
		c.closeWith421(r.opts.Hostname)
	}
	r.closeListener()
	if err := shutdownGens(ctx, gens); err != nil {
		r.opts.Log.Warn("shutdown deadline passed; aborting transactions under way", "event", "shutdown_abort")
		r.cancel()
		for _, g := range gens {
			g.srv.Close()
		}
		return fmt.Errorf("smtp: %s route: %w", r.opts.Name, err)
	}
	r.cancel()
	return nil
}

// Close stops the route at once.
func (r *Route) Close() error {
	r.cancel()
	r.mu.Lock()
	r.draining = true
	gens := r.liveGens()
	r.mu.Unlock()
	err := r.closeListener()
	for _, g := range gens {
		g.srv.Close()
	}
	return err
}

func (r *Route) closeListener() error {
	if r.ln == nil {
		return nil
	}
	return r.ln.Close()
}

func (r *Route) isDraining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// backend creates sessions for one generation's go-smtp server: they all
// run under its configuration.
type backend struct {
	r   *Route
	cfg *RouteConfig
}

func (b backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	return b.r.newSession(c, b.cfg), nil
}

// slogWriter carries go-smtp's own log lines (connection errors, panics)
// into slog. They hold remote IPs and library errors, no message data.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn("smtp server", "event", "smtp_library", "detail", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// shutdownWriteTimeout bounds the 421 written to an idle client at shutdown.
const shutdownWriteTimeout = 2 * time.Second
