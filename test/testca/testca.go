// Package testca is the throwaway certificate authority of the tests: it
// signs server and client certificates for loopback peers (an etcd
// cluster, a downstream MTA, a certificate-identified client) and writes
// what a configuration names as files. Keys are ECDSA P-256; nothing
// outlives the test's temporary directory.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority of one test.
type CA struct {
	Dir      string // where its files are written
	CertFile string // the CA certificate, PEM: a ca_file

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// New makes a CA named name whose files live in a directory of the test's.
func New(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("testca: CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testca: CA: %v", err)
	}
	ca := &CA{Dir: tb.TempDir(), cert: cert, key: key}
	ca.CertFile = filepath.Join(ca.Dir, "ca.crt")
	writeFile(tb, ca.CertFile, pemOf("CERTIFICATE", der))
	return ca
}

// Pool returns a pool that holds the CA certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssuePEM signs a certificate for cn, valid for names (DNS names or IP
// addresses) and the extended usages given, and returns it and its key
// (PKCS #8) as PEM.
func (ca *CA) IssuePEM(tb testing.TB, cn string, usages []x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatalf("testca: certificate %s: %v", cn, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("testca: key %s: %v", cn, err)
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", kder)
}

// IssueFiles is IssuePEM written to <Dir>/<cn>.crt and <Dir>/<cn>.key (a
// second certificate for the same cn replaces the first).
func (ca *CA) IssueFiles(tb testing.TB, cn string, usages []x509.ExtKeyUsage, names ...string) (certFile, keyFile string) {
	tb.Helper()
	c, k := ca.IssuePEM(tb, cn, usages, names...)
	certFile, keyFile = filepath.Join(ca.Dir, cn+".crt"), filepath.Join(ca.Dir, cn+".key")
	writeFile(tb, certFile, c)
	writeFile(tb, keyFile, k)
	return certFile, keyFile
}

// ServerTLS returns a server configuration with a certificate for names,
// the first of them its CN.
func (ca *CA) ServerTLS(tb testing.TB, names ...string) *tls.Config {
	tb.Helper()
	c, k := ca.IssuePEM(tb, names[0], []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, names...)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		tb.Fatalf("testca: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("testca: key: %v", err)
	}
	return key
}

// serial is random: two CAs of one test never issue the same issuer and
// serial pair by chance (RFC 5280 §4.1.2.2 wants them unique).
func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("testca: serial: %v", err)
	}
	return n
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("testca: %v", err)
	}
}
