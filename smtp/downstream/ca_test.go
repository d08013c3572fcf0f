package downstream

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/testca"
)

// testCA is a certificate authority of one test (test/testca): it issues
// server certificates for names (the MX hosts) and client certificates (a
// certificate-identified connector).
type testCA struct {
	t    *testing.T
	ca   *testca.CA
	file string // the CA certificate, PEM: a Config.CAFile
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := testca.New(t, "test CA")
	return &testCA{t: t, ca: ca, file: ca.CertFile}
}

func (ca *testCA) pool() *x509.CertPool { return ca.ca.Pool() }

// serverTLS is a server configuration with a certificate for names.
func (ca *testCA) serverTLS(names ...string) *tls.Config {
	ca.t.Helper()
	return ca.ca.ServerTLS(ca.t, names...)
}

// clientFiles writes a client certificate and key and returns their paths.
func (ca *testCA) clientFiles(name string) (certFile, keyFile string) {
	ca.t.Helper()
	return ca.ca.IssueFiles(ca.t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, name)
}
