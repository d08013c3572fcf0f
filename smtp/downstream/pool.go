package downstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Downstream TLS modes (Config.TLS).
const (
	TLSVerify   = "verify"   // STARTTLS required, certificate verified, TLS >= 1.2
	TLSInsecure = "insecure" // plain text, STARTTLS never attempted
)

const (
	defaultDownstreamTimeout  = 30 * time.Second
	defaultDownstreamPoolSize = 8
	// quitTimeout bounds the polite QUIT when a connection leaves the pool.
	quitTimeout = 2 * time.Second
	// streamBufSize is the size of one copy from the message into DATA.
	streamBufSize = 32 * 1024
)

// Config configures the client towards the downstream server (the
// CRM intake or the company smarthost): one host, an ordered list of hosts
// or a domain's MX hosts (hosts.go).
type Config struct {
	Address    string        // host:port of a single host (the form before Addresses)
	Addresses  []string      // host:port each, tried in order (failover)
	MX         string        // a domain: its MX hosts, by preference (RFC 5321 §5.1)
	MXPort     int           // port of the MX hosts; default 25
	Resolver   Resolver      // DNS for MX and the MX hosts' addresses; required with MX
	TLS        string        // "verify" (default) or "insecure"
	CAFile     string        // PEM roots added to the system pool in verify mode
	ServerName string        // name checked in the certificate; default: each host's name
	HeloName   string        // EHLO name after STARTTLS (and in insecure mode); default "localhost"
	Timeout    time.Duration // per dial, per command, per write; default 30s
	PoolSize   int           // idle connections kept per host; default 8
	// Auth, when set, logs in after STARTTLS (auth.go); only with TLS verify.
	Auth *Auth
	// ClientCertFile and ClientKeyFile: the certificate presented in the
	// TLS handshake (a certificate-identified connector); only with TLS
	// verify. Read when the Pool is made: a reload (SIGHUP) makes a new one.
	ClientCertFile, ClientKeyFile string
	// EightBit is what happens to an 8-bit body when the hop does not offer
	// 8BITMIME (RFC 6152): EightBitConvert (default) or EightBitRefuse.
	EightBit string
	// Observe, when set, is told the outcome of each connection attempt and
	// transaction per host (a host:port label, never an address): metrics.
	Observe func(host, result string)
}

// Pool is a client for the downstream servers of one route, with a pool of
// idle connections per host. It is safe for concurrent use; each Txn
// belongs to one caller.
type Pool struct {
	cfg    Config
	tls    *tls.Config // template for each host; nil in insecure mode
	log    *slog.Logger
	dialer net.Dialer
	static []*host  // Address or Addresses, in order; nil with MX
	mx     *mxCache // nil without MX

	mu       sync.Mutex
	hosts    map[string]*host // every host seen, by label
	closed   bool
	draining bool // replaced by a reload: nothing goes back to the pool (Drain)
}

// New validates cfg, fills its defaults and loads the CA file.
// It does not connect. log may be nil.
func New(cfg Config, log *slog.Logger) (*Pool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkTargets(cfg); err != nil {
		return nil, err
	}
	var err error
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("downstream timeout %v: must not be negative", cfg.Timeout)
	case cfg.Timeout == 0:
		cfg.Timeout = defaultDownstreamTimeout
	}
	switch {
	case cfg.PoolSize < 0:
		return nil, fmt.Errorf("downstream pool size %d: must not be negative", cfg.PoolSize)
	case cfg.PoolSize == 0:
		cfg.PoolSize = defaultDownstreamPoolSize
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
	}
	if strings.ContainsAny(cfg.HeloName, "\r\n ") {
		return nil, fmt.Errorf("downstream helo name %q: must be one word", cfg.HeloName)
	}
	if err := checkEightBit(&cfg); err != nil {
		return nil, err
	}
	d := &Pool{cfg: cfg, log: log, dialer: net.Dialer{Timeout: cfg.Timeout}, hosts: map[string]*host{}}
	switch cfg.TLS {
	case "", TLSVerify:
		d.cfg.TLS = TLSVerify
		if d.tls, err = downstreamTLSConfig(cfg, log); err != nil {
			return nil, err
		}
	case TLSInsecure:
		if cfg.CAFile != "" || cfg.ClientCertFile != "" || cfg.Auth != nil {
			// AUTH over plain text would send the password in clear
			// (RFC 4954 §4); a client certificate needs TLS.
			return nil, errors.New("downstream ca_file, client certificate and auth: only valid with tls verify")
		}
		log.Warn("downstream TLS disabled", "downstream", d.describe(), "tls", TLSInsecure)
	default:
		return nil, fmt.Errorf("downstream tls %q: want %q or %q", cfg.TLS, TLSVerify, TLSInsecure)
	}
	if err := d.initTargets(); err != nil {
		return nil, err
	}
	return d, nil
}

// downstreamTLSConfig builds the verify-mode TLS configuration: system roots
// plus CAFile, TLS 1.2 minimum (DESIGN.md invariant 4), the client
// certificate if any. Each host gets a clone with its own ServerName.
func downstreamTLSConfig(cfg Config, log *slog.Logger) (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		log.Warn("system certificate pool unavailable", "err", err)
		roots = x509.NewCertPool()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("downstream ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("downstream ca_file %q: no PEM certificate found", cfg.CAFile)
		}
	}
	tc := &tls.Config{ServerName: cfg.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cfg.ClientCertFile != "" || cfg.ClientKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("downstream client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// downConn is one downstream connection. raw is the TCP connection under the
// client (and under TLS): closing it aborts whatever the client is doing.
type downConn struct {
	h      *host // where it goes back to
	w      *downWire
	raw    net.Conn
	idleAt time.Time // when it went back to the pool
	reused bool      // taken from the pool: may have died while idle
}

// probeAfter: a pooled connection idle for longer is checked with RSET
// before reuse; a hot one is not. After the downstream's 250 for the final
// dot its transaction state is already clear (RFC 5321 §4.1.1.4), so RSET
// would only probe liveness: one round trip of four per message. A hot
// connection that died anyway fails at MAIL, which the first Rcpt retries
// once on a fresh one.
const probeAfter = time.Second

// kill closes the TCP connection without a word: no final dot, no QUIT.
// Closing raw rather than the tls.Conn avoids waiting on a close_notify.
// Guards call it from their own goroutine, so it touches nothing else.
func (dc *downConn) kill() { _ = dc.raw.Close() }

// close is kill by the connection's owner, who is done with it: the
// buffers go back for the next connection.
func (dc *downConn) close() {
	dc.kill()
	dc.w.release()
}

// guard closes the connection when ctx ends, so that a wait on it returns
// at once. Time limits are the connection's deadlines (downWire.deadline):
// a timer per command cost more than the rewrite of a header.
type guard struct {
	ctx  context.Context
	stop func() bool
}

func (dc *downConn) guard(ctx context.Context) guard {
	if ctx.Done() == nil {
		return guard{}
	}
	return guard{ctx: ctx, stop: context.AfterFunc(ctx, dc.kill)}
}

// end disarms the guard; it returns ctx's cause when the guard fired (the
// connection is then closed).
func (g guard) end() error {
	if g.stop == nil || g.stop() {
		return nil
	}
	return context.Cause(g.ctx)
}

// firedErr prefers the guard's reason (timeout, cancel) to the symptom it
// caused (use of closed connection).
func firedErr(fired, err error) error {
	if fired == nil {
		return err
	}
	if err == nil {
		return fired
	}
	return fmt.Errorf("%w (%v)", fired, err)
}

// Begin starts a downstream transaction for the sender from: it takes an
// idle connection (checked with RSET when it rested long) or dials. MAIL
// goes out with the first recipient (Txn.Rcpt), in one write with it when
// the server offers PIPELINING. On error nothing is left open.
func (d *Pool) Begin(ctx context.Context, from string, opts *gosmtp.MailOptions) (*Txn, error) {
	dc, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	return &Txn{d: d, dc: dc, from: from, opts: opts}, nil
}

// retryable: MAIL on a reused connection failed without a reply, or with
// 421 (the server is closing the idle connection: RFC 5321 §3.8), and the
// caller is still waiting.
func retryable(dc *downConn, err error) bool {
	if err == nil || !dc.reused || ctx0(err) {
		return false
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	return true
}

// ctx0 reports a cancelled or expired caller, which no retry helps.
func ctx0(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// conn returns a checked idle connection or a new one, from the first
// host that answers: the hosts in order, those that failed lately last
// (hosts.go). A host that fails to connect (refused, timeout, 421 or any
// other greeting or TLS failure) hands over to the next.
func (d *Pool) conn(ctx context.Context) (*downConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, downstreamErr("connect", err)
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, downstreamErr("connect", errDownstreamClosed)
	}
	hosts, err := d.targets(ctx)
	if err != nil {
		return nil, err
	}
	var last error
	for i, h := range hosts {
		dc, err := d.hostConn(ctx, h)
		if err == nil {
			d.markUp(h)
			return dc, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		d.markDown(h)
		if i+1 < len(hosts) {
			d.observe(h, "failover")
			d.log.Warn("downstream host failed, trying the next", "downstream", h.label, "next", hosts[i+1].label)
		}
	}
	return nil, downstreamErr("connect", last)
}

// hostConn returns a checked idle connection to h, or dials it.
func (d *Pool) hostConn(ctx context.Context, h *host) (*downConn, error) {
	if dc := d.take(h); dc != nil {
		dc.reused = true
		if time.Since(dc.idleAt) < probeAfter {
			return dc, nil
		}
		g := dc.guard(ctx)
		err := dc.w.reset()
		if err = firedErr(g.end(), err); err == nil {
			return dc, nil
		}
		dc.close()
		d.log.Debug("pooled downstream connection dead, redialing", "downstream", h.label, "err", err)
		if ctx.Err() != nil {
			return nil, downstreamErr("connect", err)
		}
	}
	return d.dial(ctx, h)
}

// take pops an idle connection of h, or returns nil.
func (d *Pool) take(h *host) *downConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(h.idle); n > 0 {
		dc := h.idle[n-1]
		h.idle = h.idle[:n-1]
		return dc
	}
	return nil
}

// put returns a connection after a successful transaction, or quits it when
// its host's pool is full or the pool closed.
func (d *Pool) put(dc *downConn) {
	d.mu.Lock()
	h := dc.h
	if !d.closed && !d.draining && len(h.idle) < d.cfg.PoolSize {
		dc.idleAt, dc.reused = time.Now(), false
		h.idle = append(h.idle, dc)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.quit(dc)
}

// quit says goodbye within quitTimeout and closes the connection.
func (d *Pool) quit(dc *downConn) {
	_ = dc.w.quit(min(d.cfg.Timeout, quitTimeout))
	dc.close()
}

// dial connects to h, greets and, in verify mode, runs STARTTLS, checks
// the certificate and logs in when configured. Every failure is temporary.
func (d *Pool) dial(ctx context.Context, h *host) (*downConn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	raw, err := d.dialHost(dctx, h)
	if err != nil {
		de := downstreamErr("connect", err)
		d.observe(h, connectResult(de))
		d.log.Warn("downstream dial failed", "downstream", h.label, "err", err)
		return nil, de
	}
	dc := &downConn{h: h, raw: raw, w: newDownWire(raw, d.cfg.Timeout)}
	g := dc.guard(ctx)
	err = d.hello(ctx, dc)
	if err = firedErr(g.end(), err); err != nil {
		dc.close()
		de := downstreamErr("connect", err)
		if de.Kind == ErrPerm {
			// A refusal while connecting (a 554 greeting, 535 to our
			// credentials) concerns this hop, not the message: the
			// sender retries while another host or the operator helps.
			de.Kind = ErrTemp
		}
		d.observe(h, connectResult(de))
		d.logConnectFailure(h, de)
		return nil, de
	}
	d.observe(h, "connected")
	return dc, nil
}

// hello runs the greeting and EHLO, then in verify mode STARTTLS, EHLO
// again and AUTH when configured. Without STARTTLS we do not send: RFC 3207
// §4.1 leaves the choice to the client, and DESIGN.md asks for verified TLS
// (no downgrade).
func (d *Pool) hello(ctx context.Context, dc *downConn) error {
	if err := dc.w.greet(); err != nil {
		return err
	}
	if err := dc.w.hello(d.cfg.HeloName); err != nil {
		return err
	}
	if d.tls == nil {
		return nil
	}
	if err := dc.w.startTLS(ctx, dc.h.tls, d.cfg.HeloName); err != nil {
		return err
	}
	tc, ok := dc.w.conn.(*tls.Conn)
	if !ok || tc.ConnectionState().Version < tls.VersionTLS12 {
		return errors.New("downstream TLS not established")
	}
	if d.cfg.Auth != nil {
		// Only here, after a verified handshake: RFC 4954 §4 forbids
		// credentials in the clear, and an unverified peer could be anyone.
		return dc.w.auth(d.cfg.Auth)
	}
	return nil
}

// logConnectFailure logs why a connection could not be set up. No address
// of a mail user appears here: only the downstream's host:port.
func (d *Pool) logConnectFailure(h *host, de *Error) {
	reason := connectResult(de)
	switch reason {
	case "no_starttls":
		d.log.Error("downstream does not offer STARTTLS; refusing to send without TLS (tls verify)",
			"downstream", h.label, "reason", reason)
		return
	case "auth":
		// Neither the password nor the reply text is logged: the code says
		// enough, and a server may echo the user name.
		d.log.Error("downstream refused our credentials or offers no usable AUTH", "downstream", h.label,
			"reason", reason, "code", de.Code, "err", de.Err)
		return
	}
	d.log.Warn("downstream connect failed", "downstream", h.label, "reason", reason,
		"code", de.Code, "err", de.Err)
}

// connectResult names why a connection failed, for logs and metrics.
func connectResult(de *Error) string {
	var cv *tls.CertificateVerificationError
	var re tls.RecordHeaderError
	var oe *net.OpError
	switch {
	case errors.As(de, &oe) && oe.Op == "dial" && !oe.Timeout():
		return "unreachable"
	case errors.Is(de, errNoStartTLS):
		return "no_starttls"
	case errors.Is(de, errAuth):
		return "auth"
	case errors.As(de, &cv):
		return "certificate"
	case errors.As(de, &re):
		return "tls"
	case isTimeout(de):
		return "timeout"
	case de.Code != 0:
		return "reply"
	}
	return "protocol"
}

// logFailure logs a failed command with its codes; the reply text is not
// logged (it may name an address: DESIGN.md invariant 1).
func (d *Pool) logFailure(h *host, de *Error) {
	d.log.Info("downstream command failed", "downstream", h.label, "stage", de.Stage,
		"code", de.Code, "enhanced", fmt.Sprintf("%d.%d.%d", de.Enhanced[0], de.Enhanced[1], de.Enhanced[2]),
		"temporary", errors.Is(de, ErrTemp), "err", de.Err)
}

// Drain is for a downstream a reload replaced: it quits the idle
// connections, and a connection in use is quit when its transaction ends
// instead of going back to the pool. Unlike Close it still begins
// transactions, on fresh connections: a session accepted before the
// reload keeps its configuration, downstream included, to its end.
func (d *Pool) Drain() { d.quitIdle(&d.draining) }

// Idle reports how many connections wait in the pool: what a drain or a
// close empties (for diagnostics and the routes' reload tests).
func (d *Pool) Idle() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, h := range d.hosts {
		n += len(h.idle)
	}
	return n
}

// Close quits the idle connections. Transactions under way finish; their
// connections are then closed instead of pooled.
func (d *Pool) Close() error {
	d.quitIdle(&d.closed)
	return nil
}

// quitIdle sets flag (closed or draining: nothing goes back to the pool
// any more) and quits the idle connections.
func (d *Pool) quitIdle(flag *bool) {
	d.mu.Lock()
	var idle []*downConn
	for _, h := range d.hosts {
		idle = append(idle, h.idle...)
		h.idle = nil
	}
	*flag = true
	d.mu.Unlock()
	for _, dc := range idle {
		d.quit(dc)
	}
}

// Txn is one downstream mail transaction, mirrored from one client
// transaction. It is not safe for concurrent use. Every Txn ends with a Data
// that returned nil (the connection goes back to the pool) or with Abort.
type Txn struct {
	d      *Pool
	dc     *downConn
	from   string
	opts   *gosmtp.MailOptions
	mailed bool // MAIL accepted
	utf8   bool // MAIL went with SMTPUTF8 (intl.go)
	// partUTF8: a MIME part's header needs SMTPUTF8 (PartHeadersUTF8).
	partUTF8 bool
	rcpts    []string // recipients accepted, for a MAIL sent again with SMTPUTF8
	done     bool
}

// Rcpt sends RCPT TO, with MAIL before the first. A reply error
// (*Error with a Code) at stage "rcpt" concerns this recipient
// only and the transaction goes on. Any other error ends the transaction
// (the connection is closed): stage "mail" or "connect" when there was no
// transaction downstream yet.
func (t *Txn) Rcpt(ctx context.Context, to string) error {
	if t.done {
		return downstreamErr("rcpt", errTxnDone)
	}
	if needsUTF8(to) && !t.utf8 && !t.dc.w.has("SMTPUTF8") {
		// RFC 6531 §3.2: a non-ASCII mailbox goes only to a server that
		// offers SMTPUTF8; nothing is sent, the transaction goes on.
		de := noSMTPUTF8("rcpt")
		t.d.logFailure(t.dc.h, de)
		return de
	}
	g := t.dc.guard(ctx)
	var err error
	switch {
	case !t.mailed:
		var ended *Error
		if ended, err = t.first(ctx, to); ended != nil {
			g.end()
			return ended
		}
	case needsUTF8(to) && !t.utf8:
		err = t.againUTF8(to)
	default:
		err = t.dc.w.rcpt(to)
	}
	if err = firedErr(g.end(), err); err != nil {
		de := downstreamErr("rcpt", err)
		if de.Code == 0 {
			t.Abort()
		}
		t.d.logFailure(t.dc.h, de)
		return de
	}
	t.rcpts = append(t.rcpts, to)
	return nil
}

// first sends MAIL and the first RCPT. A pooled connection that died
// while idle is replaced by one fresh dial. ended is a MAIL or connect
// failure (the transaction has ended); rcptErr is RCPT's.
func (t *Txn) first(ctx context.Context, to string) (ended *Error, rcptErr error) {
	if needsUTF8(t.from) && !t.dc.w.has("SMTPUTF8") {
		t.Abort()
		return noSMTPUTF8("mail"), nil
	}
	t.utf8 = t.wantUTF8(to)
	mailErr, rcptErr := t.dc.w.mailRcpt(t.from, t.opts, t.utf8, to)
	if retryable(t.dc, mailErr) {
		t.dc.close()
		t.d.log.Debug("pooled downstream connection dead at MAIL, redialing", "downstream", t.dc.h.label, "err", mailErr)
		dc, err := t.d.dial(ctx, t.dc.h)
		if err != nil {
			t.done = true
			return downstreamErr("connect", err), nil
		}
		t.dc = dc
		// The caller's guard watches the dead connection; this one gets its own.
		g := dc.guard(ctx)
		t.utf8 = t.wantUTF8(to)
		mailErr, rcptErr = dc.w.mailRcpt(t.from, t.opts, t.utf8, to)
		if fired := g.end(); fired != nil {
			mailErr, rcptErr = firedErr(fired, mailErr), firedErr(fired, rcptErr)
		}
	}
	if mailErr != nil {
		t.Abort()
		de := downstreamErr("mail", mailErr)
		t.d.logFailure(t.dc.h, de)
		return de, nil
	}
	t.mailed = true
	return nil, rcptErr
}

// Data sends DATA and streams body, dot-stuffed. It returns nil only after
// the downstream's 250 for the final dot (DESIGN.md invariant 2). If
// reading body fails, the transaction is aborted without the final dot and
// body's error is returned as is (not wrapped, so a *gosmtp.SMTPError such
// as ErrBareLineEnding keeps its identity). Every other error is a
// *Error. The transaction has ended when Data returns.
func (t *Txn) Data(ctx context.Context, body io.Reader) error {
	if t.done {
		return downstreamErr("data", errTxnDone)
	}
	if !t.mailed {
		return t.fail(downstreamErr("data", errNoRcpt))
	}
	br := headReader(body)
	defer putHeadReader(br)
	body, err := t.prepareBody(ctx, br)
	if err != nil {
		return err
	}
	g := t.dc.guard(ctx)
	dw, err := t.dc.w.data()
	if err != nil {
		return t.fail(downstreamErr("data", firedErr(g.end(), err)))
	}
	if rerr, werr := t.stream(dw, body); rerr != nil || werr != nil {
		fired := g.end()
		if rerr != nil {
			t.Abort()
			t.d.log.Info("downstream data aborted: message read failed", "downstream", t.dc.h.label)
			return rerr
		}
		return t.fail(downstreamErr("data", firedErr(fired, werr)))
	}
	err = t.dc.w.endData(dw)
	fired := g.end()
	if err != nil {
		return t.fail(downstreamErr("data", firedErr(fired, err)))
	}
	t.done = true
	t.d.observe(t.dc.h, "delivered")
	if fired != nil {
		// The 250 arrived, then the guard closed the connection: the message
		// is delivered, the connection is not reusable.
		t.dc.w.release()
		return nil
	}
	t.d.put(t.dc)
	return nil
}

// stream copies body into the DATA phase. Each write gets a deadline; slow
// reading of body is the inbound side's business, so there is no deadline
// for the whole copy, only the caller's ctx.
func (t *Txn) stream(dw *dotStuffer, body io.Reader) (readErr, writeErr error) {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			_ = t.dc.w.conn.SetWriteDeadline(time.Now().Add(t.d.cfg.Timeout))
			if _, err := dw.Write(buf[:n]); err != nil {
				return nil, err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil, nil
		case rerr != nil:
			return rerr, nil
		}
	}
}

// fail aborts the transaction, logs and returns de.
func (t *Txn) fail(de *Error) error {
	t.Abort()
	t.d.observe(t.dc.h, "failed")
	t.d.logFailure(t.dc.h, de)
	return de
}

// streamBufs recycles the DATA copy buffers: a fresh 32 KiB per message
// costs its zeroing and garbage collection.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, streamBufSize); return &b }}

// Abort ends the transaction by closing the connection: the downstream never
// sees the final dot, so it holds no message (RFC 5321 §4.1.1.4: data ends
// only with CRLF "." CRLF). It never returns the connection to the pool. It is
// a no-op after the end.
func (t *Txn) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.dc.close()
}
