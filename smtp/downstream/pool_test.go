package downstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
)

// dsTimeout keeps every downstream test short.
const dsTimeout = 300 * time.Millisecond

// newDS returns a client for addr; mutate adjusts the config.
func newDS(t testing.TB, addr string, logger *slog.Logger, mutate func(*Config)) *Pool {
	t.Helper()
	cfg := Config{Address: addr, TLS: TLSInsecure, HeloName: "proxy.test", Timeout: dsTimeout, PoolSize: 2}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func dsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send runs one whole transaction.
func send(ctx context.Context, d *Pool, body string, rcpts ...string) error {
	return sendWith(ctx, d, nil, body, rcpts...)
}

// sendWith is send with MAIL parameters.
func sendWith(ctx context.Context, d *Pool, opts *gosmtp.MailOptions, body string, rcpts ...string) error {
	txn, err := d.Begin(ctx, "from@relay.test", opts)
	if err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := txn.Rcpt(ctx, r); err != nil {
			txn.Abort()
			return err
		}
	}
	return txn.Data(ctx, strings.NewReader(body))
}

func wantKind(t *testing.T, err, kind error, stage string, code int) *Error {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T): want *Error", err, err)
	}
	if !errors.Is(err, kind) || de.Stage != stage || de.Code != code {
		t.Fatalf("error %v: want kind %v, stage %q, code %d; got stage %q code %d", err, kind, stage, code, de.Stage, de.Code)
	}
	return de
}

const dsBody = "Subject: hi\r\n\r\nline 1\r\n.dot line\r\n..two dots\r\n"

func TestDownstreamPoolReuse(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	for i := range 10 {
		if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	st := b.Stats()
	if st.Sessions != 1 || len(st.Messages) != 10 {
		t.Fatalf("sessions %d, messages %d: want 1, 10", st.Sessions, len(st.Messages))
	}
	if st.Messages[0] != dsBody { // dot-stuffed on the wire, unstuffed by the server
		t.Fatalf("message %q: want %q", st.Messages[0], dsBody)
	}
}

func TestDownstreamConcurrent(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 8 {
		wg.Go(func() {
			for range 5 {
				errs <- send(ctx, d, dsBody, "a@crm.test")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Stats(); len(st.Messages) != 40 {
		t.Fatalf("messages %d: want 40", len(st.Messages))
	}
	if n := d.Idle(); n > 2 {
		t.Fatalf("%d idle connections, pool size 2", n)
	}
}

func TestDownstreamRcptRejected(t *testing.T) {
	b := &downstreamtest.Sink{RcptErr: map[string]error{"bad@crm.test": &gosmtp.SMTPError{
		Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "secret upstream text bad@crm.test"}}}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Rcpt(ctx, "good@crm.test"); err != nil {
		t.Fatal(err)
	}
	de := wantKind(t, txn.Rcpt(ctx, "bad@crm.test"), ErrPerm, "rcpt", 550)
	if de.Enhanced != (gosmtp.EnhancedCode{5, 1, 1}) || !strings.Contains(de.Reply, "secret") {
		t.Fatalf("enhanced %v, reply %q", de.Enhanced, de.Reply)
	}
	if msg := de.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, "@") || !strings.Contains(msg, "550 5.1.1") {
		t.Fatalf("Error() = %q: want the code without the downstream text", msg)
	}
	var se *gosmtp.SMTPError
	if errors.As(de, &se) {
		t.Fatal("the downstream *SMTPError must not be reachable with errors.As")
	}
	if err := txn.Data(ctx, strings.NewReader(dsBody)); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); len(st.Messages) != 1 {
		t.Fatalf("messages %d: want 1", len(st.Messages))
	}
}

func TestDownstreamMailTemp(t *testing.T) {
	b := &downstreamtest.Sink{MailErr: &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "busy"}}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err) // MAIL goes with the first RCPT
	}
	wantKind(t, txn.Rcpt(ctx, "a@crm.test"), ErrTemp, "mail", 451)
	if d.Idle() != 0 {
		t.Fatal("a failed MAIL must not pool its connection")
	}
	wantKind(t, txn.Rcpt(ctx, "a@crm.test"), ErrTemp, "rcpt", 0) // ended
}

func TestDownstreamDataPerm(t *testing.T) {
	b := &downstreamtest.Sink{DataErr: &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "no"}}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	wantKind(t, send(dsCtx(t), d, dsBody, "a@crm.test"), ErrPerm, "data", 554)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// errBareLine stands for smtp.ErrBareLineEnding, with which the strict
// DATA reader ends a body it refuses.
var errBareLine = &gosmtp.SMTPError{Code: 500, EnhancedCode: gosmtp.EnhancedCode{5, 5, 2}, Message: "Bare CR or LF in message data is not allowed"}

func TestDownstreamBodyFailsMidStream(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Rcpt(ctx, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	head := "Subject: x\r\n\r\n" + strings.Repeat("0123456789012345678901234567890123456789\r\n", 500) // 21 KB: surely on the wire
	body := io.MultiReader(strings.NewReader(head), failingReader{errBareLine})
	if err := txn.Data(ctx, body); err != errBareLine {
		t.Fatalf("Data = %v: want the reader's error, unwrapped", err)
	}
	txn.Abort() // idempotent
	deadline := time.Now().Add(2 * time.Second)
	for b.Stats().DataErrs == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := b.Stats(); st.DataErrs != 1 || len(st.Messages) != 0 {
		t.Fatalf("server: %d unfinished DATA, %d messages: want 1, 0", st.DataErrs, len(st.Messages))
	}
	if d.Idle() != 0 {
		t.Fatal("an aborted connection must not be pooled")
	}
}

func TestDownstreamStall(t *testing.T) {
	b := &downstreamtest.Sink{DataSleep: 3 * time.Second}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	start := time.Now()
	err := send(dsCtx(t), d, dsBody, "a@crm.test")
	elapsed := time.Since(start)
	wantKind(t, err, ErrTemp, "data", 0)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("error %v: want a deadline", err)
	}
	if elapsed > 3*dsTimeout {
		t.Fatalf("took %v with timeout %v", elapsed, dsTimeout)
	}
}

func TestDownstreamContextCanceled(t *testing.T) {
	b := &downstreamtest.Sink{DataSleep: 3 * time.Second}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, func(c *Config) { c.Timeout = 5 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := send(ctx, d, dsBody, "a@crm.test")
	wantKind(t, err, ErrTemp, "data", 0)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("took %v: the context deadline was 200ms", elapsed)
	}
}

func TestDownstreamDropMidData(t *testing.T) {
	b := &downstreamtest.Sink{DropInData: true}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	body := strings.Repeat("x", 100) + "\r\n"
	wantKind(t, send(dsCtx(t), d, body, "a@crm.test"), ErrTemp, "data", 0)
}

func TestDownstreamDeadPooledConn(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)
	if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	b.CloseConns()
	time.Sleep(20 * time.Millisecond) // let the FIN arrive
	if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
		t.Fatalf("after the pooled connection died: %v", err)
	}
	if st := b.Stats(); st.Sessions != 2 || len(st.Messages) != 2 {
		t.Fatalf("sessions %d, messages %d: want 2, 2", st.Sessions, len(st.Messages))
	}
}

func TestDownstreamDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := newDS(t, addr, nil, nil)
	_, err = d.Begin(dsCtx(t), "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
}

func TestDownstreamVerifyNoStartTLS(t *testing.T) {
	b := &downstreamtest.Sink{}
	var logs logbuf.Buffer
	d := newDS(t, downstreamtest.Start(t, b, nil), slog.New(slog.NewTextHandler(&logs, nil)),
		func(c *Config) { c.TLS = TLSVerify })
	_, err := d.Begin(dsCtx(t), "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
	if !strings.Contains(logs.String(), "reason=no_starttls") {
		t.Fatalf("log %q: want reason=no_starttls", logs.String())
	}
	if st := b.Stats(); len(st.TLSMail) != 0 {
		t.Fatal("MAIL was sent without TLS")
	}
}

// selfSigned returns a server TLS config for 127.0.0.1 and the PEM file of
// its certificate, to use as CAFile.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	certPEM, keyPEM := selfSignedPair(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, caFile
}

// selfSignedPair is smtp.SelfSignedPair(nil, an hour from now), which
// this package cannot import: ECDSA P-256, for localhost and 127.0.0.1.
func selfSignedPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func TestDownstreamVerifyTLS(t *testing.T) {
	srvTLS, caFile := selfSigned(t)
	b := &downstreamtest.Sink{}
	addr := downstreamtest.Start(t, b, srvTLS)
	ctx := dsCtx(t)

	d := newDS(t, addr, nil, func(c *Config) { c.TLS = ""; c.CAFile = caFile }) // "" means verify
	for range 3 {
		if err := send(ctx, d, dsBody, "a@crm.test"); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Stats(); len(st.Messages) != 3 || st.Sessions != 1 || !st.TLSMail[0] || !st.TLSMail[2] {
		t.Fatalf("messages %d, sessions %d, MAIL over TLS %v", len(st.Messages), st.Sessions, st.TLSMail)
	}

	noCA := newDS(t, addr, nil, func(c *Config) { c.TLS = TLSVerify })
	_, err := noCA.Begin(ctx, "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) {
		t.Fatalf("error %v: want a certificate verification error", err)
	}
	wrongName := newDS(t, addr, nil, func(c *Config) {
		c.TLS, c.CAFile, c.ServerName = TLSVerify, caFile, "crm.example"
	})
	_, err = wrongName.Begin(ctx, "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
	if st := b.Stats(); len(st.Messages) != 3 {
		t.Fatalf("messages %d: want 3", len(st.Messages))
	}
}

func TestDownstreamInsecureSkipsStartTLS(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, srvTLS), nil, nil) // the server offers STARTTLS
	if err := send(dsCtx(t), d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); len(st.Messages) != 1 || st.TLSMail[0] {
		t.Fatalf("messages %d, MAIL over TLS %v: want 1 in plain text", len(st.Messages), st.TLSMail)
	}
}

func TestDownstreamClosed(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	if err := send(dsCtx(t), d, dsBody, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := d.Begin(dsCtx(t), "from@relay.test", nil)
	wantKind(t, err, ErrTemp, "connect", 0)
}

func TestNewDownstreamConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no port", Config{Address: "crm.example"}},
		{"bad tls", Config{Address: "crm.example:25", TLS: "yes"}},
		{"negative timeout", Config{Address: "crm.example:25", Timeout: -1}},
		{"negative pool", Config{Address: "crm.example:25", PoolSize: -1}},
		{"missing ca", Config{Address: "crm.example:25", CAFile: "/nonexistent/ca.pem"}},
		{"ca with insecure", Config{Address: "crm.example:25", TLS: "insecure", CAFile: "x"}},
		{"helo with space", Config{Address: "crm.example:25", HeloName: "a b"}},
	} {
		if _, err := New(tc.cfg, nil); err == nil {
			t.Errorf("%s: want an error", tc.name)
		}
	}
	d, err := New(Config{Address: "crm.example:25"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s %v %d %v %s", d.cfg.TLS, d.cfg.Timeout, d.cfg.PoolSize, d.tls.MinVersion == tls.VersionTLS12, d.static[0].tls.ServerName); got != "verify 30s 8 true crm.example" {
		t.Fatalf("defaults: %s", got)
	}
}

// TestDownstreamDrain: a drained downstream still relays, on fresh
// connections, and pools none.
func TestDownstreamDrain(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	send := func() {
		t.Helper()
		txn, err := d.Begin(context.Background(), "a@company.example", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Rcpt(context.Background(), "b@company.example"); err != nil {
			t.Fatal(err)
		}
		if err := txn.Data(context.Background(), strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	send()
	if n := d.Idle(); n != 1 {
		t.Fatalf("pooled %d before the drain", n)
	}
	d.Drain()
	if n := d.Idle(); n != 0 {
		t.Fatalf("pooled %d after the drain", n)
	}
	send()
	if n, s := d.Idle(), b.Stats().Sessions; n != 0 || s != 2 {
		t.Fatalf("after a drained transaction: %d pooled, %d connections; want 0, 2", n, s)
	}
}
