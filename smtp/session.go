package smtp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// session is one SMTP session of a route. go-smtp creates one per EHLO
// after a connection or a STARTTLS; the routeConn under it keeps the ID.
// It mirrors each client transaction to one downstream transaction
// (DESIGN.md invariant 2).
type session struct {
	r    *Route
	cfg  *RouteConfig // the route's configuration when the connection came
	c    *gosmtp.Conn
	conn *routeConn // nil only in tests that bypass the listener
	id   string
	ip   netip.Addr
	log  *slog.Logger

	user         string // authenticated user, "" if none
	authFailures int

	// The transaction under way. Addresses are held in memory only.
	n      int // transactions in this session, for the reference
	from   string
	down   string // the downstream sender: from's token on the inbound route
	opts   *gosmtp.MailOptions
	txn    *downstream.Txn // begun at the first accepted recipient
	broken bool            // the downstream transaction died after it began
	rcpts  map[string]bool // downstream recipients accepted
	// rcptTokens are the recipient tokens resolved (outbound), and
	// msgIDHash the message's hashed Message-ID: the audit record.
	rcptTokens []string
	msgIDHash  string
	// stage holds the inbound transaction's new tokens until its message
	// passed (begun with the downstream transaction); nil outbound.
	stage *tokenize.Stage
	// fwd is the hop a trusted relay's XFORWARD named, until the
	// transaction ends; xclientHelo the HELO its XCLIENT named (relay.go).
	fwd         mailauth.Hop
	xclientHelo string
}

func (r *Route) newSession(c *gosmtp.Conn, cfg *RouteConfig) *session {
	s := &session{r: r, cfg: cfg, c: c, conn: connOf(c)}
	if s.conn != nil {
		s.id = s.conn.id
		s.conn.setSMTPConn(c)
	} else {
		s.id = newSessionID()
	}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.ip = ap.Addr().Unmap()
	}
	s.log = r.opts.Log.With("session", s.id)
	if st, ok := c.TLSConnectionState(); ok {
		r.opts.Metrics.TLSHandshake(r.opts.Name, st.Version)
	}
	return s
}

// ref is the reference a reply carries: session ID and transaction number.
func (s *session) ref() string { return fmt.Sprintf("%s.%d", s.id, s.n) }

// isTLS reports whether STARTTLS has been completed on this connection.
func (s *session) isTLS() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

// Mail starts a transaction. Nothing goes downstream yet: the downstream
// MAIL is sent with the first recipient we accept, so an open-relay probe
// costs neither a downstream connection nor a token.
func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.r.isDraining() {
		s.closeSoon()
		return s.reply("mail", errShuttingDown)
	}
	if err := s.cfg.policy.mayMail(s); err != nil {
		return s.reply("mail", err)
	}
	if err := s.cfg.policy.checkSender(s, from); err != nil {
		return s.reply("mail", err)
	}
	s.endTxn()
	s.n++
	s.from = from
	s.opts = downstreamMailOptions(opts)
	s.rcpts = map[string]bool{}
	if s.conn != nil {
		s.conn.setBusy(true)
	}
	return nil
}

// downstreamMailOptions keeps the MAIL parameters that describe the
// content (RFC 6152 8BITMIME, RFC 6531 SMTPUTF8). SIZE changes with the
// rewrite, and AUTH= (RFC 4954 §5) may name the customer: neither is
// passed on.
func downstreamMailOptions(o *gosmtp.MailOptions) *gosmtp.MailOptions {
	if o == nil {
		return nil
	}
	return &gosmtp.MailOptions{Body: o.Body, UTF8: o.UTF8}
}

// Rcpt maps the recipient, begins the downstream transaction at the first
// one, and mirrors RCPT: a downstream refusal of one recipient is passed
// back for that recipient only.
func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.broken {
		return s.reply("rcpt", errTxnBroken)
	}
	ctx := s.r.ctx
	down, err := s.cfg.policy.recipient(ctx, s, to)
	if err != nil {
		return s.reply("rcpt", err)
	}
	if s.rcpts[down] {
		return nil // two names of one downstream recipient: deliver once
	}
	if s.txn == nil {
		if err := s.begin(); err != nil {
			return s.reply("mail", err)
		}
	}
	if err := s.txn.Rcpt(ctx, down); err != nil {
		de, ok := err.(*downstream.Error)
		switch {
		case ok && de.Stage != "rcpt":
			// MAIL went with this first recipient and failed: there is no
			// downstream transaction, the next RCPT begins one again.
			s.txn = nil
			s.r.opts.Metrics.DownstreamError(s.r.opts.Name, "mail")
			return s.reply("mail", err)
		case !ok || de.Code == 0:
			// The connection died: recipients accepted so far are lost
			// with it, so the whole transaction must start over.
			s.broken, s.txn = true, nil
		}
		return s.reply("rcpt", err)
	}
	s.rcpts[down] = true
	return nil
}

// begin derives the downstream sender and takes a downstream connection;
// MAIL goes with the first RCPT (Txn.Rcpt).
func (s *session) begin() error {
	from, err := s.cfg.policy.sender(s.r.ctx, s, s.from)
	if err != nil {
		return err
	}
	txn, err := s.cfg.downstream.Begin(s.r.ctx, from, s.opts)
	if err != nil {
		s.r.opts.Metrics.DownstreamError(s.r.opts.Name, "mail")
		return err
	}
	s.txn, s.down = txn, from
	return nil
}

// Reset ends the transaction (RSET, after DATA, a new EHLO). A downstream
// transaction still open is aborted: it never gets the final dot.
func (s *session) Reset() {
	s.endTxn()
	s.fwd = mailauth.Hop{} // XFORWARD holds for one transaction
	if s.conn != nil {
		s.conn.setBusy(false)
	}
}

// Logout ends the session (QUIT, connection closed, STARTTLS).
func (s *session) Logout() error {
	s.endTxn()
	if s.conn != nil {
		s.conn.setBusy(false)
	}
	return nil
}

func (s *session) endTxn() {
	if s.txn != nil {
		s.txn.Abort()
	}
	s.txn, s.broken, s.from, s.down, s.opts, s.rcpts = nil, false, "", "", nil, nil
	s.rcptTokens, s.msgIDHash = nil, ""
	s.stage = nil // uncommitted: the transaction leaves no token
}

// closeSoon closes the connection shortly after the reply being written:
// used when a command arrives during a shutdown.
func (s *session) closeSoon() {
	if s.conn != nil {
		time.AfterFunc(200*time.Millisecond, func() { s.conn.Close() })
	}
}

// AuthMechanisms and Auth implement gosmtp.AuthSession through the route.
func (s *session) AuthMechanisms() []string { return s.cfg.policy.authMechanisms(s) }

func (s *session) Auth(mech string) (sasl.Server, error) {
	srv, err := s.cfg.policy.auth(s, mech)
	if err != nil {
		return nil, s.reply("auth", err)
	}
	return srv, nil
}
