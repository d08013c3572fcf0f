package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// TestServerTLSConfigAEADOnly (issue 18 item 10): the TLS 1.2 suites are
// ECDHE with AES-GCM or ChaCha20-Poly1305 only, and a TLS 1.2 client that
// offers only CBC suites (Lucky13's target) gets no handshake.
func TestServerTLSConfigAEADOnly(t *testing.T) {
	store, _ := certLoadSelfSigned(t, t.TempDir(), certHost)
	cfg := ServerTLSConfig(store)
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("suite %s is not ECDHE with AEAD", name)
		}
	}
	if len(cfg.CipherSuites) == 0 {
		t.Fatal("no suites listed: Go's defaults include CBC")
	}
	addr := certServe(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(store.Leaf())
	client := func(suites ...uint16) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: certHost,
			MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := client(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA); err == nil {
		t.Error("a CBC-only TLS 1.2 client got a handshake")
	}
	if err := client(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Errorf("an AEAD TLS 1.2 client: %v", err)
	}
}

// TestTicketKeysRotate: a session resumes under the current key, and no
// longer once two rotations have dropped the key its ticket was made with.
// The interval is short here; ServerTLSConfig uses ticketKeyRotation (24 h).
func TestTicketKeysRotate(t *testing.T) {
	store, _ := certLoadSelfSigned(t, t.TempDir(), certHost)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: serverCipherSuites, GetCertificate: store.GetCertificate}
	const every = 300 * time.Millisecond
	rotateTicketKeys(cfg, every)
	addr := certServe(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(store.Leaf())
	cc := &tls.Config{RootCAs: roots, ServerName: certHost, MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	resumed := func() bool {
		c, err := tls.Dial("tcp", addr, cc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().DidResume
	}
	resumed()
	if !resumed() {
		t.Fatal("no resumption under the current ticket key")
	}
	time.Sleep(5 * every)
	if resumed() {
		t.Fatal("resumed with a ticket whose key was rotated out")
	}
}
