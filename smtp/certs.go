package smtp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
)

const (
	selfSignedDir      = "tls"
	selfSignedCertName = "selfsigned.crt"
	selfSignedKeyName  = "selfsigned.key"
	selfSignedValidity = 2 * 365 * 24 * time.Hour
	// certRenewBefore is how long before expiry a self-signed certificate is
	// replaced, and a configured one is warned about.
	certRenewBefore = 30 * 24 * time.Hour
)

// CertStore holds a listener certificate and can reload it (on SIGHUP)
// without dropping sessions: established TLS connections keep the
// certificate they were handshaked with, new handshakes get the current one.
type CertStore struct {
	certFile, keyFile string
	// selfSigned stores are regenerated on Reload when near expiry or when
	// hosts are no longer covered.
	selfSigned bool
	hosts      []string
	log        *slog.Logger
	cur        atomic.Pointer[tls.Certificate]
}

// LoadCert loads the listener certificate from certFile and keyFile (PEM).
// When both are empty it loads, or creates, a self-signed certificate in
// <dataDir>/tls/ for hosts plus localhost, 127.0.0.1 and ::1, and logs a
// warning at every start: sending MTAs that verify certificates will not
// accept it. Setting only one of certFile and keyFile is an error.
func LoadCert(certFile, keyFile, dataDir string, hosts []string, log *slog.Logger) (*CertStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("tls: cert_file %q and key_file %q must be set together (or both empty for a self-signed certificate)", certFile, keyFile)
	}
	c := &CertStore{certFile: certFile, keyFile: keyFile, hosts: slices.Clone(hosts), log: log}
	if certFile == "" {
		if dataDir == "" {
			return nil, errors.New("tls: no cert_file/key_file and no data directory for a self-signed certificate")
		}
		dir := filepath.Join(dataDir, selfSignedDir)
		c.selfSigned = true
		c.certFile = filepath.Join(dir, selfSignedCertName)
		c.keyFile = filepath.Join(dir, selfSignedKeyName)
	}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	if c.selfSigned {
		log.Warn("listeners use a self-signed TLS certificate; sending MTAs that verify certificates will not deliver over TLS, configure cert_file and key_file",
			"event", "self_signed_certificate", "path", c.certFile)
	}
	return c, nil
}

// Reload re-reads the certificate files (regenerating a self-signed
// certificate first when needed). On error the previous certificate stays in
// use and the error is returned.
func (c *CertStore) Reload() error {
	if c.selfSigned {
		if err := ensureSelfSigned(c.certFile, c.keyFile, c.hosts); err != nil {
			return err
		}
	}
	cert, err := loadKeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	if !c.selfSigned && time.Until(cert.Leaf.NotAfter) < certRenewBefore {
		c.log.Warn("TLS certificate expires soon", "event", "certificate_expiring",
			"path", c.certFile, "not_after", cert.Leaf.NotAfter)
	}
	c.cur.Store(cert)
	return nil
}

// GetCertificate returns the current certificate; it is meant for
// tls.Config.GetCertificate, so a Reload applies to the next handshake.
func (c *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Leaf returns the parsed current certificate.
func (c *CertStore) Leaf() *x509.Certificate {
	return c.cur.Load().Leaf
}

// ServerTLSConfig returns the listeners' TLS configuration. TLS 1.0 and 1.1
// are refused (RFC 8996). TLS 1.2 offers only ECDHE key exchange with AEAD
// ciphers (serverCipherSuites); TLS 1.3 suites are Go's, all AEAD. Session
// ticket keys are rotated daily (rotateTicketKeys). A sending MTA that only
// speaks CBC suites in TLS 1.2 cannot start TLS here; STARTTLS between MTAs
// is opportunistic (RFC 7435), so it may send in clear instead: the cost of
// refusing suites with padding-oracle history (Lucky13, RFC 7457 §2.5)
// the security review asked for (issue 18 item 10).
func ServerTLSConfig(c *CertStore) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   serverCipherSuites,
		GetCertificate: c.GetCertificate,
	}
	rotateTicketKeys(cfg, ticketKeyRotation)
	return cfg
}

// serverCipherSuites are the TLS 1.2 suites offered: forward secrecy
// (ECDHE) and AEAD only (RFC 7525 §4.2, RFC 9325 §4.2). Go orders them by
// the client's hardware; crypto/tls ignores this list for TLS 1.3.
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// loadKeyPair reads and parses a PEM certificate and key. Errors name the
// files, never their contents.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// ensureSelfSigned keeps a usable self-signed pair at certFile/keyFile,
// generating a new one when it is missing, unreadable, expiring within
// certRenewBefore, or no longer names every host.
func ensureSelfSigned(certFile, keyFile string, hosts []string) error {
	dir := filepath.Dir(certFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls: create %s: %w", dir, err)
	}
	if cert, err := loadKeyPair(certFile, keyFile); err == nil && selfSignedUsable(cert.Leaf, hosts) {
		return nil
	}
	certPEM, keyPEM, err := SelfSignedPair(hosts, time.Now().Add(selfSignedValidity))
	if err != nil {
		return err
	}
	// The key goes first: a crash between the two renames leaves a pair that
	// does not match, which the next start simply regenerates.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, certPEM, 0o644)
}

func selfSignedUsable(leaf *x509.Certificate, hosts []string) bool {
	if time.Until(leaf.NotAfter) < certRenewBefore {
		return false
	}
	for _, h := range hosts {
		if h != "" && leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// SelfSignedPair returns a PEM certificate and PKCS #8 key (ECDSA P-256) valid
// until notAfter for hosts plus localhost, 127.0.0.1 and ::1. Host names
// that parse as IP addresses become IP SANs, the others DNS SANs.
func SelfSignedPair(hosts []string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate key: %w", err)
	}
	// RFC 5280 §4.1.2.2: serials are positive and at most 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate serial: %w", err)
	}
	tmpl := selfSignedTemplate(hosts, notAfter)
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: encode key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

func selfSignedTemplate(hosts []string, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{
		// NotBefore is back-dated an hour so a peer with a slightly slow
		// clock does not see a certificate from the future.
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1") {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	tmpl.Subject = pkix.Name{CommonName: tmpl.DNSNames[0]}
	return tmpl
}

// writeFileAtomic replaces path with data (internal/safeio), so a reader
// (or a crash) never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := safeio.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("tls: write %s: %w", path, err)
	}
	return nil
}
