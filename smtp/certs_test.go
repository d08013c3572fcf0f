package smtp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const certHost = "mx.proxy.example"

// certLoadSelfSigned loads the self-signed certificate of dataDir, returning
// the store and what was logged.
func certLoadSelfSigned(t *testing.T, dataDir string, hosts ...string) (*CertStore, string) {
	t.Helper()
	var buf bytes.Buffer
	c, err := LoadCert("", "", dataDir, hosts, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c, buf.String()
}

func certMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadCertSelfSignedCreates(t *testing.T) {
	dataDir := t.TempDir()
	c, logged := certLoadSelfSigned(t, dataDir, certHost, "192.0.2.25")
	dir := filepath.Join(dataDir, "tls")
	modes := map[string]fs.FileMode{dir: 0o700, filepath.Join(dir, "selfsigned.crt"): 0o644, filepath.Join(dir, "selfsigned.key"): 0o600}
	for path, want := range modes {
		if got := certMode(t, path); got != want {
			t.Errorf("mode of %s = %o, want %o", path, got, want)
		}
	}
	leaf := c.Leaf()
	for _, h := range []string{certHost, "localhost", "127.0.0.1", "::1", "192.0.2.25"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if days := time.Until(leaf.NotAfter).Hours() / 24; days < 729 || days > 731 {
		t.Errorf("certificate valid for %.1f days, want about 730", days)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	if !strings.Contains(logged, "event=self_signed_certificate") || !strings.Contains(logged, filepath.Join(dir, "selfsigned.crt")) {
		t.Errorf("warning not logged with event and path: %s", logged)
	}
}

func TestLoadCertSelfSignedReused(t *testing.T) {
	dataDir := t.TempDir()
	first, _ := certLoadSelfSigned(t, dataDir, certHost)
	second, logged := certLoadSelfSigned(t, dataDir, certHost)
	if first.Leaf().SerialNumber.Cmp(second.Leaf().SerialNumber) != 0 {
		t.Error("second start generated a new certificate instead of reusing the first")
	}
	if !strings.Contains(logged, "event=self_signed_certificate") {
		t.Error("warning not logged on the second start")
	}
}

func TestLoadCertSelfSignedRegenerated(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // writes the existing files
		hosts   []string
		renewed bool
	}{
		{"valid", certWriteSelfSigned([]string{certHost}, 365*24*time.Hour), []string{certHost}, false},
		{"expires in 10 days", certWriteSelfSigned([]string{certHost}, 10*24*time.Hour), []string{certHost}, true},
		{"expired", certWriteSelfSigned([]string{certHost}, -time.Hour), []string{certHost}, true},
		{"host added", certWriteSelfSigned([]string{certHost}, 365*24*time.Hour), []string{certHost, "mx2.proxy.example"}, true},
		{"key does not match", certWriteMismatch, []string{certHost}, true},
		{"garbage", certWriteGarbage, []string{certHost}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			dir := filepath.Join(dataDir, "tls")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, "selfsigned.crt"))
			c, _ := certLoadSelfSigned(t, dataDir, tt.hosts...)
			after, _ := os.ReadFile(filepath.Join(dir, "selfsigned.crt"))
			if renewed := !bytes.Equal(before, after); renewed != tt.renewed {
				t.Fatalf("renewed = %v, want %v", renewed, tt.renewed)
			}
			if time.Until(c.Leaf().NotAfter) < 30*24*time.Hour {
				t.Error("loaded certificate expires within 30 days")
			}
			if got := certMode(t, filepath.Join(dir, "selfsigned.key")); got != 0o600 {
				t.Errorf("key mode %o after regeneration", got)
			}
		})
	}
}

func certWriteSelfSigned(hosts []string, validFor time.Duration) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		certPEM, keyPEM, err := SelfSignedPair(hosts, time.Now().Add(validFor))
		if err != nil {
			t.Fatal(err)
		}
		certWrite(t, dir, "selfsigned", certPEM, keyPEM)
	}
}

func certWriteMismatch(t *testing.T, dir string) {
	certPEM, _, err := SelfSignedPair(nil, time.Now().Add(time.Hour*24*365))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := SelfSignedPair(nil, time.Now().Add(time.Hour*24*365))
	if err != nil {
		t.Fatal(err)
	}
	certWrite(t, dir, "selfsigned", certPEM, otherKey)
}

func certWriteGarbage(t *testing.T, dir string) {
	certWrite(t, dir, "selfsigned", []byte("not a certificate"), []byte("not a key"))
}

// certWrite writes <name>.crt and <name>.key into dir and returns their paths.
func certWrite(t *testing.T, dir, name string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// certPair writes a fresh pair for certHost as <name>.crt/.key in dir.
func certPair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := SelfSignedPair([]string{certHost}, time.Now().Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return certWrite(t, dir, name, certPEM, keyPEM)
}

func TestLoadCertErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := certPair(t, dir, "good")
	// A key file with PEM armour around recognisable bytes: they must not
	// appear in the error.
	secret := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("TOPSECRETKEYMATERIAL")})
	_, badKey := certWrite(t, dir, "bad", nil, secret)
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name            string
		cert, key, data string
		mention         string
		is              error
	}{
		{"cert without key", certFile, "", dir, "key_file", nil},
		{"key without cert", "", keyFile, dir, "cert_file", nil},
		{"missing cert", missing, keyFile, dir, missing, fs.ErrNotExist},
		{"missing key", certFile, missing, dir, missing, fs.ErrNotExist},
		{"malformed key", certFile, badKey, dir, badKey, nil},
		{"no data dir", "", "", "", "data directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCert(tt.cert, tt.key, tt.data, []string{certHost}, nil)
			if err == nil {
				t.Fatal("LoadCert succeeded")
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not name %q", err, tt.mention)
			}
			if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(err.Error(), "VE9QU0VDUkVU") {
				t.Errorf("error leaks key bytes: %q", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

// certServe runs a TLS line echo server on 127.0.0.1 and returns its address.
func certServe(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(inner, cfg)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { certEcho(c) })
		}
	})
	return inner.Addr().String()
}

func certEcho(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
}

// certDial completes a handshake with the server at addr.
func certDial(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func certSerial(c *tls.Conn) *big.Int {
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func certRoundTrip(t *testing.T, c *tls.Conn, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != line {
		t.Fatalf("echo %q, %v; want %q", got, err, line)
	}
}

func TestCertStoreReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := certPair(t, dir, "listener")
	store, err := LoadCert(certFile, keyFile, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldLeaf := store.Leaf()
	addr := certServe(t, ServerTLSConfig(store))
	roots := x509.NewCertPool()
	roots.AddCert(oldLeaf)
	cfg := &tls.Config{RootCAs: roots, ServerName: certHost}
	before := certDial(t, addr, cfg)

	newCert, newKey := certPair(t, t.TempDir(), "next")
	certReplace(t, newCert, certFile)
	certReplace(t, newKey, keyFile)
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	newLeaf := store.Leaf()
	if newLeaf.SerialNumber.Cmp(oldLeaf.SerialNumber) == 0 {
		t.Fatal("Reload did not pick up the new certificate")
	}
	roots.AddCert(newLeaf)
	if got := certSerial(certDial(t, addr, cfg)); got.Cmp(newLeaf.SerialNumber) != 0 {
		t.Error("new handshake did not get the reloaded certificate")
	}
	certRoundTrip(t, before, "NOOP\r\n") // the session from before the reload goes on
	if certSerial(before).Cmp(oldLeaf.SerialNumber) != 0 {
		t.Error("established connection changed certificate")
	}

	if err := os.WriteFile(keyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if store.Leaf() != newLeaf {
		t.Error("failed Reload replaced the certificate")
	}
	certDial(t, addr, cfg) // still serving
}

// certReplace renames src over dst, as a deployment tool would.
func certReplace(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
}

func TestCertStoreReloadSelfSignedRenews(t *testing.T) {
	dataDir := t.TempDir()
	store, _ := certLoadSelfSigned(t, dataDir, certHost)
	old := store.Leaf()
	certWriteSelfSigned([]string{certHost}, 24*time.Hour)(t, filepath.Join(dataDir, "tls"))
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if store.Leaf().SerialNumber.Cmp(old.SerialNumber) == 0 || time.Until(store.Leaf().NotAfter) < 700*24*time.Hour {
		t.Error("Reload did not regenerate an expiring self-signed certificate")
	}
}

func TestCertStoreConcurrentReload(t *testing.T) {
	store, _ := certLoadSelfSigned(t, t.TempDir(), certHost)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if c, _ := store.GetCertificate(nil); c == nil || store.Leaf() == nil {
					t.Error("no certificate during reload")
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := store.Reload(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestServerTLSConfigVersions(t *testing.T) {
	store, _ := certLoadSelfSigned(t, t.TempDir(), certHost)
	addr := certServe(t, ServerTLSConfig(store))
	roots := x509.NewCertPool()
	roots.AddCert(store.Leaf())
	tests := []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: certHost, MinVersion: tt.min, MaxVersion: tt.max}
			c, err := tls.Dial("tcp", addr, cfg)
			if !tt.ok {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if v := c.ConnectionState().Version; v != tt.max {
				t.Errorf("negotiated %x, want %x", v, tt.max)
			}
			certRoundTrip(t, c, "EHLO client.example\r\n")
		})
	}
}

func TestSelfSignedPair(t *testing.T) {
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	certPEM, keyPEM, err := SelfSignedPair([]string{"mx.a.example", "198.51.100.9", "", "localhost"}, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if !leaf.NotAfter.Equal(notAfter.UTC()) {
		t.Errorf("NotAfter %v, want %v", leaf.NotAfter, notAfter)
	}
	if want := []string{"mx.a.example", "localhost"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNS SANs %v, want %v", leaf.DNSNames, want)
	}
	if len(leaf.IPAddresses) != 3 {
		t.Errorf("IP SANs %v, want 198.51.100.9, 127.0.0.1 and ::1", leaf.IPAddresses)
	}
	if leaf.Subject.CommonName != "mx.a.example" || leaf.IsCA {
		t.Errorf("subject %q, IsCA %v", leaf.Subject.CommonName, leaf.IsCA)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Error("key is not a PKCS #8 PEM block")
	}
}
