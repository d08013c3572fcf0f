package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sessionStats is what one session measured.
type sessionStats struct {
	data, txn  []time.Duration // per message
	setup      []time.Duration // per connection: dial to ready for MAIL
	tls, auth  []time.Duration // per connection: STARTTLS to EHLO answered; AUTH
	tlsState   string          // the first connection's TLS parameters
	errs       int
	firstError error
}

// merge adds o's measurements to st.
func (st *sessionStats) merge(o *sessionStats) {
	st.data = append(st.data, o.data...)
	st.txn = append(st.txn, o.txn...)
	st.setup = append(st.setup, o.setup...)
	st.tls = append(st.tls, o.tls...)
	st.auth = append(st.auth, o.auth...)
	if st.tlsState == "" {
		st.tlsState = o.tlsState
	}
	st.errs += o.errs
	if st.firstError == nil {
		st.firstError = o.firstError
	}
}

func (st *sessionStats) fail(err error) {
	st.errs++
	if st.firstError == nil {
		st.firstError = err
	}
}

// loadSession is one client connection sending messages in turn.
type loadSession struct {
	cfg  config
	msgs []payload
	next int // index into msgs of the next message
	c    *smtp.Client
	st   sessionStats
}

// connect opens the connection if there is none; a failure is counted.
func (s *loadSession) connect() bool {
	if s.c != nil {
		return true
	}
	c, err := s.dial()
	if err != nil {
		s.st.fail(err)
		return false
	}
	s.c = c
	return true
}

// maxDialFailures ends a session after this many failed connection set-ups
// in a row (a wrong password must not retry until -max-time).
const maxDialFailures = 3

// run sends up to cfg.messages messages until deadline, redialing after a
// failure that left the connection unusable.
func (s *loadSession) run(deadline time.Time) {
	defer s.close()
	dialFailures := 0
	if s.c == nil && s.st.errs > 0 { // -connect-first failed
		dialFailures = 1
	}
	for range s.cfg.messages {
		if time.Now().After(deadline) || dialFailures >= maxDialFailures {
			break
		}
		if !s.connect() {
			dialFailures++
			continue
		}
		dialFailures = 0
		p := s.msgs[s.next%len(s.msgs)]
		s.next++
		d, x, err := send(s.c, s.cfg.from, p)
		if err != nil {
			s.st.fail(err)
			s.c.Close()
			s.c = nil
			continue
		}
		s.st.data = append(s.st.data, d)
		s.st.txn = append(s.st.txn, x)
	}
}

func (s *loadSession) close() {
	if s.c != nil {
		s.c.Quit()
		s.c = nil
	}
}

// dial connects, says EHLO, and with TLS configured runs STARTTLS, EHLO
// again and, with a user, AUTH PLAIN (RFC 4954 §4: only over TLS). It
// records the times of the whole set-up and of its TLS and AUTH steps.
func (s *loadSession) dial() (*smtp.Client, error) {
	t0 := time.Now()
	conn, err := net.DialTimeout("tcp", s.cfg.addr, s.cfg.timeout)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if s.cfg.tls == nil {
		c = smtp.NewClient(conn)
	} else {
		// NewClientStartTLS says EHLO as "localhost" before STARTTLS; the
		// Hello below is the EHLO over TLS, which also runs the handshake
		// (crypto/tls shakes hands on the first write).
		if c, err = smtp.NewClientStartTLS(conn, s.cfg.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	}
	c.CommandTimeout = s.cfg.timeout
	c.SubmissionTimeout = s.cfg.timeout
	t1 := time.Now()
	if err := c.Hello(s.cfg.helo); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	t2 := time.Now()
	if s.cfg.tls != nil {
		s.st.tls = append(s.st.tls, t2.Sub(t1))
		if s.st.tlsState == "" {
			s.st.tlsState = describeTLS(c)
		}
	}
	if s.cfg.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.user, s.cfg.password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
		s.st.auth = append(s.st.auth, time.Since(t2))
	}
	s.st.setup = append(s.st.setup, time.Since(t0))
	return c, nil
}

func describeTLS(c *smtp.Client) string {
	cs, ok := c.TLSConnectionState()
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID)
}

// send runs one transaction and returns the DATA-to-250 and MAIL-to-250
// times.
func send(c *smtp.Client, from string, p payload) (data, txn time.Duration, err error) {
	t0 := time.Now()
	if err := c.Mail(from, nil); err != nil {
		return 0, 0, fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(p.rcpt, nil); err != nil {
		return 0, 0, fmt.Errorf("RCPT: %w", err)
	}
	t1 := time.Now()
	w, err := c.Data()
	if err != nil {
		return 0, 0, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(p.body); err != nil {
		return 0, 0, fmt.Errorf("DATA write: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, 0, fmt.Errorf("end of DATA: %w", err)
	}
	t2 := time.Now()
	return t2.Sub(t1), t2.Sub(t0), nil
}
