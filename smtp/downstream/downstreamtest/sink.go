// Package downstreamtest is the downstream server of tests: a go-smtp sink
// on loopback that records what the proxy's downstream client sends it,
// and can be told to refuse, stall or drop (the CRM intake or smarthost
// of the routes' tests and of the downstream client's own).
package downstreamtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Sink is a go-smtp backend that records what the downstream client
// makes it see, and can be told to refuse, stall or drop. Set its
// exported fields before Start.
type Sink struct {
	MailErr    error
	RcptErr    map[string]error
	DataErr    error
	DataSleep  time.Duration
	DropInData bool
	// SMTPUTF8 makes the server offer SMTPUTF8 (RFC 6531); go-smtp always
	// offers 8BITMIME.
	SMTPUTF8 bool
	// No8BitMIME hides go-smtp's 8BITMIME from the EHLO reply: a 7-bit-only
	// hop (RFC 6152), as Postfix's smtp-sink -8 is.
	No8BitMIME bool
	// RequireTLS refuses MAIL before STARTTLS (give Start a tlsCfg).
	RequireTLS bool
	// Users, when set, are the AUTH PLAIN/LOGIN accounts (user → password),
	// offered after STARTTLS only, and MAIL needs one of them.
	Users map[string]string
	// AuthMechs, when set, replaces the mechanisms offered (PLAIN, LOGIN).
	AuthMechs []string
	stop      chan struct{}

	mu       sync.Mutex
	sessions int // connections accepted
	conns    []*gosmtp.Conn
	messages []string
	dataErrs []error // Data readers that ended without the final dot
	tlsMail  []bool  // whether each MAIL came over TLS
	utf8Mail []bool  // whether each MAIL had SMTPUTF8
	authed   []string
}

func (b *Sink) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Contains(b.conns, c) { // go-smtp opens a new session after STARTTLS
		b.sessions++
		b.conns = append(b.conns, c)
	}
	return &session{b: b, c: c}, nil
}

type session struct {
	b    *Sink
	c    *gosmtp.Conn
	user string
}

func (s *session) Mail(_ string, opts *gosmtp.MailOptions) error {
	_, isTLS := s.c.TLSConnectionState()
	if s.b.RequireTLS && !isTLS {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if len(s.b.Users) > 0 && s.user == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	s.b.mu.Lock()
	s.b.tlsMail = append(s.b.tlsMail, isTLS)
	s.b.utf8Mail = append(s.b.utf8Mail, opts != nil && opts.UTF8)
	s.b.mu.Unlock()
	return s.b.MailErr
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error { return s.b.RcptErr[to] }
func (s *session) Reset()                                      {}
func (s *session) Logout() error                               { return nil }

func (s *session) Data(r io.Reader) error {
	if s.b.DropInData {
		_, _ = io.ReadFull(r, make([]byte, 10))
		_ = s.c.Conn().Close()
		return errors.New("dropped")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		s.b.mu.Lock()
		s.b.dataErrs = append(s.b.dataErrs, err)
		s.b.mu.Unlock()
		return err
	}
	if s.b.DataSleep > 0 {
		select {
		case <-time.After(s.b.DataSleep):
		case <-s.b.stop:
		}
	}
	if s.b.DataErr != nil {
		return s.b.DataErr
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.messages = append(s.b.messages, string(data))
	return nil
}

// Stats is what a Sink has seen so far.
type Stats struct {
	Sessions int      // connections accepted
	Messages []string // messages received whole
	DataErrs int      // DATA readers that ended without the final dot
	TLSMail  []bool   // whether each MAIL came over TLS
	UTF8Mail []bool   // whether each MAIL had SMTPUTF8
	Authed   []string // the users that logged in, in order
}

func (b *Sink) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{b.sessions, append([]string(nil), b.messages...), len(b.dataErrs), append([]bool(nil), b.tlsMail...),
		append([]bool(nil), b.utf8Mail...), append([]string(nil), b.authed...)}
}

// CloseConns closes the server side of every connection, as a restarted or
// idle-timing-out server would.
func (b *Sink) CloseConns() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Conn().Close()
	}
}

// Start runs a go-smtp server for b on 127.0.0.1:0 until the test ends and
// returns its address; tlsCfg enables STARTTLS.
func Start(t testing.TB, b *Sink, tlsCfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, b, l, tlsCfg)
	return l.Addr().String()
}

// Serve runs a go-smtp server for b on l until the test ends (for a
// listener of the test's choice: another loopback address, a shared port).
func Serve(t testing.TB, b *Sink, l net.Listener, tlsCfg *tls.Config) {
	t.Helper()
	b.stop = make(chan struct{})
	if b.No8BitMIME {
		l = sevenBitListener{l}
	}
	s := gosmtp.NewServer(b)
	s.Domain = "localhost"
	s.TLSConfig = tlsCfg
	s.EnableSMTPUTF8 = b.SMTPUTF8
	s.ReadTimeout = 5 * time.Second
	s.WriteTimeout = 5 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() {
		close(b.stop)
		_ = s.Close()
	})
}

// AuthMechanisms and Auth make the session a gosmtp.AuthSession: PLAIN and
// LOGIN against Users, over TLS only (RFC 4954 §4).
func (s *session) AuthMechanisms() []string {
	if _, isTLS := s.c.TLSConnectionState(); !isTLS || len(s.b.Users) == 0 {
		return nil
	}
	if s.b.AuthMechs != nil {
		return s.b.AuthMechs
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if _, isTLS := s.c.TLSConnectionState(); !isTLS || len(s.b.Users) == 0 {
		return nil, gosmtp.ErrAuthUnsupported
	}
	check := func(user, pass string) error {
		if want, ok := s.b.Users[user]; !ok || want != pass {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.user = user
		s.b.mu.Lock()
		s.b.authed = append(s.b.authed, user)
		s.b.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client): "Username:", then "Password:".
type loginServer struct {
	check     func(user, pass string) error
	user      string
	askedUser bool
	askedPass bool
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case !l.askedUser:
		l.askedUser = true
		if len(resp) == 0 {
			return []byte("Username:"), false, nil
		}
		l.user = string(resp)
		l.askedPass = true
		return []byte("Password:"), false, nil
	case !l.askedPass:
		l.user, l.askedPass = string(resp), true
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// sevenBitListener's connections write "8BITMIME" in the EHLO reply as an
// unknown keyword of the same length: go-smtp always offers the extension.
type sevenBitListener struct{ net.Listener }

func (l sevenBitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return sevenBitConn{c}, nil
}

type sevenBitConn struct{ net.Conn }

func (c sevenBitConn) Write(p []byte) (int, error) {
	n := len(p)
	for _, sep := range []string{"-", " "} {
		p = bytes.ReplaceAll(p, []byte("250"+sep+"8BITMIME\r\n"), []byte("250"+sep+"X-7BITONLY\r\n"))
	}
	if _, err := c.Conn.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}
