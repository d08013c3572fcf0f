package testca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"testing"
)

// TestServerAndClient: a server certificate from ServerTLS and a client
// certificate from IssueFiles complete a mutual TLS handshake on loopback,
// each checked against Pool; a second CA's certificate is refused.
func TestServerAndClient(t *testing.T) {
	ca := New(t, "test CA")
	srv := ca.ServerTLS(t, "127.0.0.1", "localhost")
	srv.ClientAuth, srv.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(issuer *CA) error {
		certFile, keyFile := issuer.IssueFiles(t, "client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, "client.test")
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair},
			MinVersion: tls.VersionTLS12, ServerName: "localhost"})
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3 reports a refused client certificate on the first read;
		// an accepted one reads the server's close.
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
	if err := dial(ca); err != nil {
		t.Fatalf("a client certificate of the CA: %v", err)
	}
	if err := dial(New(t, "other CA")); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
}
