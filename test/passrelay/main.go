// Command passrelay is the reference "bare go-smtp pass-through relay" of
// the SMTP benchmarks (test/bench-smtp.sh): the fair baseline for what one
// gets from go-smtp with downstream connection reuse and nothing else
// (target c: no TLS, no AUTH, no rewriting).
//
// With -user it also has the outbound route's entry requirements (target
// f): STARTTLS before anything else, then AUTH PLAIN checked
// against an argon2id hash with the parameters of `proxy hash-password`
// (m=64 MiB, t=3, p=2), at most four checks at a time as the proxy does. It
// is the TLS baseline of test/bench-smtp.sh (target f): what a bare go-smtp
// relay costs with the same per-session handshake and password check as
// tokenproxy's outbound route, and nothing else (no token resolution, no
// rewriting, no leak guard).
//
// The relay: MAIL and RCPT mirrored downstream as they
// arrive, DATA streamed, 250 only after the downstream's 250, pooled
// downstream connections RSET before reuse. The certificate is a fresh
// self-signed ECDSA P-256 one (as the proxy's quickstart makes), written to
// -cert-out for clients that verify it.
//
//	passrelay -listen 127.0.0.1:2525 -downstream 127.0.0.1:2526 -pool 32
//	passrelay -listen 127.0.0.1:2588 -downstream 127.0.0.1:2526 -user crm -password-file pw -cert-out relay.crt
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:2588", "address to accept SMTP on")
	downstream := flag.String("downstream", "", "host:port of the downstream SMTP server (required)")
	poolSize := flag.Int("pool", 32, "idle downstream connections kept for reuse")
	timeout := flag.Duration("timeout", time.Minute, "read/write timeout, both sides")
	maxBytes := flag.Int64("max-message-bytes", 50<<20, "largest message accepted")
	user := flag.String("user", "", "require STARTTLS and AUTH PLAIN as this user (empty: neither)")
	passwordFile := flag.String("password-file", "", "`file` whose first line is the user's password (with -user)")
	certOut := flag.String("cert-out", "", "write the self-signed certificate (PEM) to this `file`")
	flag.Parse()
	if *downstream == "" || (*user != "") != (*passwordFile != "") || flag.NArg() > 0 || *poolSize < 0 {
		flag.Usage()
		os.Exit(2)
	}
	logger := log.New(os.Stderr, "passrelay: ", log.LstdFlags)

	var auth *authenticator
	var tlsConfig *tls.Config
	if *user != "" {
		var err error
		if auth, tlsConfig, err = tlsAndAuth(*user, *passwordFile, *certOut); err != nil {
			logger.Fatal(err)
		}
	}

	pool := &pool{addr: *downstream, timeout: *timeout, idle: make(chan *smtp.Client, *poolSize)}
	s := smtp.NewServer(&backend{pool: pool, auth: auth, log: logger})
	s.Addr = *listen
	s.Domain = "passrelay"
	s.MaxMessageBytes = *maxBytes
	s.MaxRecipients = 100
	s.ReadTimeout = *timeout
	s.WriteTimeout = *timeout
	s.ErrorLog = logger
	// go-smtp offers AUTH only over TLS when AllowInsecureAuth is false
	// (its default), as RFC 4954 §4 asks.
	s.TLSConfig = tlsConfig

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Fatal(err)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		s.Close()
	}()
	fmt.Fprintf(os.Stderr, "passrelay: listening on %s, downstream %s, pool %d\n", l.Addr(), *downstream, *poolSize)
	if err := s.Serve(l); err != nil {
		logger.Fatal(err)
	}
	pool.close()
}

// tlsAndAuth reads the password and makes the authenticator and a fresh
// self-signed certificate, written to certOut when set.
func tlsAndAuth(user, passwordFile, certOut string) (*authenticator, *tls.Config, error) {
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		return nil, nil, err
	}
	password, _, _ := strings.Cut(string(pw), "\n")
	auth, err := newAuthenticator(user, strings.TrimSpace(password))
	if err != nil {
		return nil, nil, err
	}
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, nil, err
	}
	if certOut != "" {
		if err := os.WriteFile(certOut, certPEM, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return auth, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
