package main

import (
	"errors"
	"io"
	"log"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Replies of our own. Downstream texts are logged, never passed on.
var (
	errDownTemp = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Downstream unavailable, try again later"}
	errNoMail   = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	// RFC 3207 §4 and RFC 4954 §6: 530 5.7.0, as the outbound route answers.
	errNeedTLS  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errNeedAuth = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
)

type backend struct {
	pool *pool
	auth *authenticator // nil: no TLS or AUTH required (target c)
	log  *log.Logger
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{conn: c, auth: b.auth, pool: b.pool, log: b.log}, nil
}

// session holds the downstream connection of the transaction in progress,
// from MAIL to the end of DATA (or RSET, or the end of the session).
type session struct {
	conn   *smtp.Conn
	auth   *authenticator
	authed bool
	pool   *pool
	log    *log.Logger
	down   *smtp.Client
}

// AuthMechanisms offers PLAIN once, after STARTTLS (go-smtp asks only then).
func (s *session) AuthMechanisms() []string {
	if s.auth == nil || s.authed {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.auth == nil || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if (identity != "" && identity != user) || !s.auth.check(user, password) {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

// Mail: with -user, TLS first, then AUTH, as on the outbound route.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.auth != nil {
		if _, ok := s.conn.TLSConnectionState(); !ok {
			return errNeedTLS
		}
		if !s.authed {
			return errNeedAuth
		}
	}
	s.release()
	c, err := s.pool.get()
	if err != nil {
		s.log.Printf("downstream connect: %v", err)
		return errDownTemp
	}
	var o *smtp.MailOptions
	if opts != nil {
		o = &smtp.MailOptions{Size: opts.Size, UTF8: opts.UTF8}
	}
	if err := c.Mail(from, o); err != nil {
		return s.fail("MAIL", c, err)
	}
	s.down = c
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.down == nil {
		return errNoMail
	}
	err := s.down.Rcpt(to, nil)
	var se *smtp.SMTPError
	if err == nil || errors.As(err, &se) {
		// A refused recipient does not end the transaction: the others
		// may still be accepted.
		return replyFor("RCPT", err, s.log)
	}
	s.log.Printf("downstream RCPT: %v", err)
	s.down.Close()
	s.down = nil
	return errDownTemp
}

// Data streams the message to the downstream and returns its verdict. If the
// client's side fails (too large, bad line, timeout) the downstream
// connection is closed without the final dot, so no partial message is ever
// accepted downstream.
func (s *session) Data(r io.Reader) error {
	c := s.down
	s.down = nil
	if c == nil {
		return errNoMail
	}
	w, err := c.Data()
	if err != nil {
		return s.fail("DATA", c, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		c.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) { // e.g. smtp.ErrDataTooLarge from our own reader
			return err
		}
		s.log.Printf("DATA stream: %v", err)
		return errDownTemp
	}
	if err := w.Close(); err != nil {
		return s.fail("end of DATA", c, err)
	}
	s.pool.put(c)
	return nil
}

// fail maps a downstream failure to our reply: the downstream's code class
// with our own text, or 451 when there was no reply. A connection that
// answered with a reply is still usable (it is RSET before reuse).
func (s *session) fail(stage string, c *smtp.Client, err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		s.log.Printf("downstream %s: %v", stage, err)
		c.Close()
		return errDownTemp
	}
	s.pool.put(c)
	return replyFor(stage, err, s.log)
}

// replyFor turns a downstream reply error into ours (nil stays nil).
func replyFor(stage string, err error, l *log.Logger) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err
	}
	l.Printf("downstream %s: reply %d", stage, se.Code)
	if se.Code >= 500 {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "Refused downstream"}
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 0, 0}, Message: "Deferred downstream"}
}

// release gives back the connection of an abandoned transaction.
func (s *session) release() {
	if s.down != nil {
		s.pool.put(s.down)
		s.down = nil
	}
}

func (s *session) Reset()        { s.release() }
func (s *session) Logout() error { s.release(); return nil }

// pool keeps idle downstream clients between transactions.
type pool struct {
	addr    string
	timeout time.Duration
	idle    chan *smtp.Client
}

// get returns an idle client that answered RSET, or a new one.
func (p *pool) get() (*smtp.Client, error) {
	for {
		select {
		case c := <-p.idle:
			if err := c.Reset(); err == nil {
				return c, nil
			}
			c.Close() // went away while idle; try the next one
		default:
			return p.dial()
		}
	}
}

func (p *pool) dial() (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", p.addr, p.timeout)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = p.timeout
	c.SubmissionTimeout = p.timeout
	if err := c.Hello("passrelay"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// put keeps c for reuse, or says QUIT when the pool is full.
func (p *pool) put(c *smtp.Client) {
	select {
	case p.idle <- c:
	default:
		if err := c.Quit(); err != nil {
			c.Close()
		}
	}
}

func (p *pool) close() {
	for {
		select {
		case c := <-p.idle:
			if err := c.Quit(); err != nil {
				c.Close()
			}
		default:
			return
		}
	}
}
