package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/argon2"
)

// The parameters of smtp.HashPassword (`proxy hash-password`), so that one
// check costs what the proxy's does.
const (
	argon2Memory  = 64 * 1024 // KiB
	argon2Time    = 3
	argon2Threads = 2
	argon2KeyLen  = 32
	// maxChecks is the proxy's limit on password checks run at once.
	maxChecks = 4
)

// authenticator checks the one user's password the way the proxy checks an
// argon2id hash: the tag of the offered password under the stored salt,
// compared in constant time.
type authenticator struct {
	user   string
	salt   []byte
	tag    []byte
	checks chan struct{}
}

func newAuthenticator(user, password string) (*authenticator, error) {
	if password == "" {
		return nil, errors.New("empty password")
	}
	a := &authenticator{user: user, salt: make([]byte, 16), checks: make(chan struct{}, maxChecks)}
	if _, err := rand.Read(a.salt); err != nil {
		return nil, err
	}
	a.tag = a.derive(password)
	return a, nil
}

func (a *authenticator) derive(password string) []byte {
	return argon2.IDKey([]byte(password), a.salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
}

// check reports whether user and password match; an unknown user costs a
// check too, as in the proxy.
func (a *authenticator) check(user, password string) bool {
	a.checks <- struct{}{}
	defer func() { <-a.checks }()
	tag := a.derive(password)
	return user == a.user && subtle.ConstantTimeCompare(tag, a.tag) == 1
}

// selfSigned returns a new ECDSA P-256 certificate for localhost and
// 127.0.0.1 (the key type of the proxy's self-signed one), and its PEM.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
