package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// standin is an in-process SMTP server that keeps what it receives: the
// demo's CRM intake and the customer's mail server.
type standin struct {
	srv *gosmtp.Server
	ln  net.Listener

	mu   sync.Mutex
	got  []received
	recv chan struct{}
}

// received is one message a stand-in accepted.
type received struct {
	from string
	to   []string
	data []byte
}

func startStandin(name string) (*standin, error) {
	st := &standin{recv: make(chan struct{}, 16)}
	st.srv = gosmtp.NewServer(standinBackend{st})
	st.srv.Domain = name
	st.srv.MaxMessageBytes = 10 << 20
	st.srv.ReadTimeout = 30 * time.Second
	st.srv.WriteTimeout = 30 * time.Second
	st.srv.EnableSMTPUTF8 = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	st.ln = ln
	go st.srv.Serve(ln)
	return st, nil
}

func (st *standin) addr() string { return st.ln.Addr().String() }

func (st *standin) close() { st.srv.Close() }

// wait returns the next message, or an error after the timeout.
func (st *standin) wait(timeout time.Duration) (received, error) {
	select {
	case <-st.recv:
	case <-time.After(timeout):
		return received{}, errors.New("no message arrived")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.got[0]
	st.got = st.got[1:]
	return m, nil
}

type standinBackend struct{ st *standin }

func (b standinBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &standinSession{st: b.st}, nil
}

type standinSession struct {
	st *standin
	m  received
}

func (s *standinSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.m = received{from: from}
	return nil
}

func (s *standinSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}

func (s *standinSession) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	s.m.data = buf.Bytes()
	s.st.mu.Lock()
	s.st.got = append(s.st.got, s.m)
	s.st.mu.Unlock()
	s.st.recv <- struct{}{}
	return nil
}

func (s *standinSession) Reset()        { s.m = received{} }
func (s *standinSession) Logout() error { return nil }
