package etcdtest

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/testca"
)

// CA is a throwaway certificate authority for a TLS cluster: it signs the
// members' certificate (server and peer) and the clients' certificates,
// whose CN etcd takes as the user name once auth is enabled. Dir and
// CertFile (the CA certificate, PEM) come from testca.CA.
type CA struct {
	*testca.CA
	Name string
}

// NewCA makes a CA whose files live in a directory of the test's.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	return &CA{CA: testca.New(tb, name), Name: name}
}

// Issue signs a certificate for cn, usable as a TLS server and client
// certificate, valid for 127.0.0.1 and localhost (members and clients all
// run on loopback), and returns the PEM files of the certificate and key.
func (ca *CA) Issue(tb testing.TB, cn string) (certFile, keyFile string) {
	tb.Helper()
	return ca.IssueFiles(tb, cn, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		"127.0.0.1", "localhost")
}

// ClientTLS returns a client configuration that trusts this CA and, when
// cn is not empty, presents a certificate for cn signed by it.
func (ca *CA) ClientTLS(tb testing.TB, cn string) *tls.Config {
	tb.Helper()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool()}
	if cn != "" {
		certFile, keyFile := ca.Issue(tb, cn)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			tb.Fatalf("etcdtest: %v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc
}
