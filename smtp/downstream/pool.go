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
// CRM intake or the company smarthost).
type Config struct {
	Address    string        // host:port, required
	TLS        string        // "verify" (default) or "insecure"
	CAFile     string        // PEM roots added to the system pool in verify mode
	ServerName string        // name checked in the certificate; default: host of Address
	HeloName   string        // EHLO name after STARTTLS (and in insecure mode); default "localhost"
	Timeout    time.Duration // per dial, per command, per write; default 30s
	PoolSize   int           // idle connections kept; default 8
}

// Pool is a client for one downstream server with a pool of idle
// connections. It is safe for concurrent use; each Txn belongs to one caller.
type Pool struct {
	cfg    Config
	tls    *tls.Config // nil in insecure mode
	log    *slog.Logger
	dialer net.Dialer

	mu       sync.Mutex
	idle     []*downConn // LIFO: the most recently used is the most likely alive
	closed   bool
	draining bool // replaced by a reload: nothing goes back to the pool (Drain)
}

// New validates cfg, fills its defaults and loads the CA file.
// It does not connect. log may be nil.
func New(cfg Config, log *slog.Logger) (*Pool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil || host == "" {
		return nil, fmt.Errorf("downstream address %q: want host:port", cfg.Address)
	}
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
	d := &Pool{cfg: cfg, log: log, dialer: net.Dialer{Timeout: cfg.Timeout}}
	switch cfg.TLS {
	case "", TLSVerify:
		d.cfg.TLS = TLSVerify
		if d.tls, err = downstreamTLSConfig(cfg, host, log); err != nil {
			return nil, err
		}
	case TLSInsecure:
		if cfg.CAFile != "" {
			return nil, fmt.Errorf("downstream ca_file %q: only valid with tls verify", cfg.CAFile)
		}
		log.Warn("downstream TLS disabled", "downstream", cfg.Address, "tls", TLSInsecure)
	default:
		return nil, fmt.Errorf("downstream tls %q: want %q or %q", cfg.TLS, TLSVerify, TLSInsecure)
	}
	return d, nil
}

// downstreamTLSConfig builds the verify-mode TLS configuration: system roots
// plus CAFile, TLS 1.2 minimum (DESIGN.md invariant 4).
func downstreamTLSConfig(cfg Config, host string, log *slog.Logger) (*tls.Config, error) {
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
	name := cfg.ServerName
	if name == "" {
		name = host
	}
	return &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// downConn is one downstream connection. raw is the TCP connection under the
// client (and under TLS): closing it aborts whatever the client is doing.
type downConn struct {
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

// conn returns a checked idle connection or a new one.
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
	if dc := d.take(); dc != nil {
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
		d.log.Debug("pooled downstream connection dead, redialing", "downstream", d.cfg.Address, "err", err)
		if ctx.Err() != nil {
			return nil, downstreamErr("connect", err)
		}
	}
	return d.dial(ctx)
}

// take pops an idle connection, or returns nil.
func (d *Pool) take() *downConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.idle); n > 0 {
		dc := d.idle[n-1]
		d.idle = d.idle[:n-1]
		return dc
	}
	return nil
}

// put returns a connection after a successful transaction, or quits it when
// the pool is full or closed.
func (d *Pool) put(dc *downConn) {
	d.mu.Lock()
	if !d.closed && !d.draining && len(d.idle) < d.cfg.PoolSize {
		dc.idleAt, dc.reused = time.Now(), false
		d.idle = append(d.idle, dc)
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

// dial connects, greets and, in verify mode, runs STARTTLS and checks the
// certificate. Every failure is temporary.
func (d *Pool) dial(ctx context.Context) (*downConn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	raw, err := d.dialer.DialContext(dctx, "tcp", d.cfg.Address)
	if err != nil {
		de := downstreamErr("connect", err)
		d.log.Warn("downstream dial failed", "downstream", d.cfg.Address, "err", err)
		return nil, de
	}
	dc := &downConn{raw: raw, w: newDownWire(raw, d.cfg.Timeout)}
	g := dc.guard(ctx)
	err = d.hello(ctx, dc)
	if err = firedErr(g.end(), err); err != nil {
		dc.close()
		de := downstreamErr("connect", err)
		d.logConnectFailure(de)
		return nil, de
	}
	return dc, nil
}

// hello runs the greeting and EHLO, then in verify mode STARTTLS and EHLO
// again. Without STARTTLS we do not send: RFC 3207 §4.1 leaves the choice
// to the client, and DESIGN.md asks for verified TLS (no downgrade).
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
	if err := dc.w.startTLS(ctx, d.tls, d.cfg.HeloName); err != nil {
		return err
	}
	tc, ok := dc.w.conn.(*tls.Conn)
	if !ok || tc.ConnectionState().Version < tls.VersionTLS12 {
		return errors.New("downstream TLS not established")
	}
	return nil
}

// logConnectFailure logs why a connection could not be set up. No address
// of a mail user appears here: only the downstream's host:port.
func (d *Pool) logConnectFailure(de *Error) {
	reason := "protocol"
	var cv *tls.CertificateVerificationError
	var re tls.RecordHeaderError
	switch {
	case errors.Is(de, errNoStartTLS):
		reason = "no_starttls"
		d.log.Error("downstream does not offer STARTTLS; refusing to send without TLS (tls verify)",
			"downstream", d.cfg.Address, "reason", reason)
		return
	case errors.As(de, &cv):
		reason = "certificate"
	case errors.As(de, &re):
		reason = "tls"
	case isTimeout(de):
		reason = "timeout"
	case de.Code != 0:
		reason = "reply"
	}
	d.log.Warn("downstream connect failed", "downstream", d.cfg.Address, "reason", reason,
		"code", de.Code, "err", de.Err)
}

// logFailure logs a failed command with its codes; the reply text is not
// logged (it may name an address: DESIGN.md invariant 1).
func (d *Pool) logFailure(de *Error) {
	d.log.Info("downstream command failed", "downstream", d.cfg.Address, "stage", de.Stage,
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
	return len(d.idle)
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
	idle := d.idle
	d.idle, *flag = nil, true
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
	done   bool
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
	g := t.dc.guard(ctx)
	var err error
	if !t.mailed {
		var ended *Error
		if ended, err = t.first(ctx, to); ended != nil {
			g.end()
			return ended
		}
	} else {
		err = t.dc.w.rcpt(to)
	}
	if err = firedErr(g.end(), err); err != nil {
		de := downstreamErr("rcpt", err)
		if de.Code == 0 {
			t.Abort()
		}
		t.d.logFailure(de)
		return de
	}
	return nil
}

// first sends MAIL and the first RCPT. A pooled connection that died
// while idle is replaced by one fresh dial. ended is a MAIL or connect
// failure (the transaction has ended); rcptErr is RCPT's.
func (t *Txn) first(ctx context.Context, to string) (ended *Error, rcptErr error) {
	mailErr, rcptErr := t.dc.w.mailRcpt(t.from, t.opts, to)
	if retryable(t.dc, mailErr) {
		t.dc.close()
		t.d.log.Debug("pooled downstream connection dead at MAIL, redialing", "downstream", t.d.cfg.Address, "err", mailErr)
		dc, err := t.d.dial(ctx)
		if err != nil {
			t.done = true
			return downstreamErr("connect", err), nil
		}
		t.dc = dc
		// The caller's guard watches the dead connection; this one gets its own.
		g := dc.guard(ctx)
		mailErr, rcptErr = dc.w.mailRcpt(t.from, t.opts, to)
		if fired := g.end(); fired != nil {
			mailErr, rcptErr = firedErr(fired, mailErr), firedErr(fired, rcptErr)
		}
	}
	if mailErr != nil {
		t.Abort()
		de := downstreamErr("mail", mailErr)
		t.d.logFailure(de)
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
	g := t.dc.guard(ctx)
	dw, err := t.dc.w.data()
	if err != nil {
		return t.fail(downstreamErr("data", firedErr(g.end(), err)))
	}
	if rerr, werr := t.stream(dw, body); rerr != nil || werr != nil {
		fired := g.end()
		if rerr != nil {
			t.Abort()
			t.d.log.Info("downstream data aborted: message read failed", "downstream", t.d.cfg.Address)
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
	t.d.logFailure(de)
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
