// Package downstreamtest is the downstream server of tests: a go-smtp sink
// on loopback that records what the proxy's downstream client sends it,
// and can be told to refuse, stall or drop (the CRM intake or smarthost
// of the routes' tests and of the downstream client's own).
package downstreamtest

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

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
	stop       chan struct{}

	mu       sync.Mutex
	sessions int // connections accepted
	conns    []*gosmtp.Conn
	messages []string
	dataErrs []error // Data readers that ended without the final dot
	tlsMail  []bool  // whether each MAIL came over TLS
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
	b *Sink
	c *gosmtp.Conn
}

func (s *session) Mail(string, *gosmtp.MailOptions) error {
	_, isTLS := s.c.TLSConnectionState()
	s.b.mu.Lock()
	s.b.tlsMail = append(s.b.tlsMail, isTLS)
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
}

func (b *Sink) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{b.sessions, append([]string(nil), b.messages...), len(b.dataErrs), append([]bool(nil), b.tlsMail...)}
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
	b.stop = make(chan struct{})
	s := gosmtp.NewServer(b)
	s.Domain = "localhost"
	s.TLSConfig = tlsCfg
	s.ReadTimeout = 5 * time.Second
	s.WriteTimeout = 5 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() {
		close(b.stop)
		_ = s.Close()
	})
	return l.Addr().String()
}
