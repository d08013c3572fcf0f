package smtp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// The downstream server the routes' tests relay to: a go-smtp sink that
// records what it is sent and can be told to refuse, stall or drop. (A
// copy of the one smtp/downstream's tests use; see there.)

// dsTimeout keeps every downstream test short.
const dsTimeout = 300 * time.Millisecond

// dsBackend is a go-smtp backend that records what the downstream client
// makes it see, and can be told to refuse, stall or drop.
type dsBackend struct {
	mailErr    error
	rcptErr    map[string]error
	dataErr    error
	dataSleep  time.Duration
	dropInData bool
	stop       chan struct{}

	mu       sync.Mutex
	sessions int // connections accepted
	conns    []*gosmtp.Conn
	messages []string
	dataErrs []error // Data readers that ended without the final dot
	tlsMail  []bool  // whether each MAIL came over TLS
}

func (b *dsBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Contains(b.conns, c) { // go-smtp opens a new session after STARTTLS
		b.sessions++
		b.conns = append(b.conns, c)
	}
	return &dsSession{b: b, c: c}, nil
}

type dsSession struct {
	b *dsBackend
	c *gosmtp.Conn
}

func (s *dsSession) Mail(string, *gosmtp.MailOptions) error {
	_, isTLS := s.c.TLSConnectionState()
	s.b.mu.Lock()
	s.b.tlsMail = append(s.b.tlsMail, isTLS)
	s.b.mu.Unlock()
	return s.b.mailErr
}

func (s *dsSession) Rcpt(to string, _ *gosmtp.RcptOptions) error { return s.b.rcptErr[to] }
func (s *dsSession) Reset()                                      {}
func (s *dsSession) Logout() error                               { return nil }

func (s *dsSession) Data(r io.Reader) error {
	if s.b.dropInData {
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
	if s.b.dataSleep > 0 {
		select {
		case <-time.After(s.b.dataSleep):
		case <-s.b.stop:
		}
	}
	if s.b.dataErr != nil {
		return s.b.dataErr
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.messages = append(s.b.messages, string(data))
	return nil
}

type dsStats struct {
	sessions int
	messages []string
	dataErrs int
	tlsMail  []bool
}

func (b *dsBackend) stats() dsStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return dsStats{b.sessions, append([]string(nil), b.messages...), len(b.dataErrs), append([]bool(nil), b.tlsMail...)}
}

// startDS runs a go-smtp server on 127.0.0.1:0; tlsCfg enables STARTTLS.
func startDS(t testing.TB, b *dsBackend, tlsCfg *tls.Config) string {
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

// newDS returns a client for addr; mutate adjusts the config.
func newDS(t testing.TB, addr string, logger *slog.Logger, mutate func(*downstream.Config)) *downstream.Pool {
	t.Helper()
	cfg := downstream.Config{Address: addr, TLS: downstream.TLSInsecure, HeloName: "proxy.test", Timeout: dsTimeout, PoolSize: 2}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := downstream.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
