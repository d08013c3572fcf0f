package mailauth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadKeyFile reads a DKIM private key from a PEM file: PKCS#1 ("RSA
// PRIVATE KEY") or PKCS#8 ("PRIVATE KEY") RSA of at least 2048 bits, or
// PKCS#8 Ed25519 (as `openssl genpkey -algorithm ed25519` writes it).
// Errors name the file and what is wrong, never key material.
func LoadKeyFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mailauth: DKIM key: %w", err)
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("mailauth: DKIM key %s: %w", path, err)
	}
	return key, nil
}

// parseKeyPEM parses the first PEM block of data as a private key. The
// x509 errors it wraps describe the structure, not the bytes.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" (unencrypted)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	return signerOf(key)
}

// signerOf accepts the private keys DKIM signs with.
func signerOf(key any) (crypto.Signer, error) {
	var s crypto.Signer
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s = k
	case ed25519.PrivateKey:
		s = k
	default:
		return nil, fmt.Errorf("unsupported key type %T: DKIM signs with RSA or Ed25519", key)
	}
	if err := checkPublicKey(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}
