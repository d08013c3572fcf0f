package vault

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// DKIMSigner is a crypto.Signer whose private key never leaves Vault's
// transit engine, for DKIM (package mailauth signs with any crypto.Signer
// and passes its context to SignContext). It is safe for concurrent use.
type DKIMSigner struct {
	key     transitKey
	version int // the key version whose public key Public returns
	pub     crypto.PublicKey
}

// NewDKIMSigner returns a DKIM signing key held by Vault's transit
// secrets engine at mount (e.g. "transit"), key name key, of type rsa-2048,
// rsa-3072, rsa-4096 or ed25519. It reads the key's latest version and its
// public key (GET <mount>/keys/<key>) and signs with that version only
// (POST <mount>/sign/<key>, key_version pinned): the public key published
// in DNS stays the one that verifies, even after the key is rotated in
// Vault. Rotating therefore means a new selector record, then a new signer.
//
// The client's token needs read on <mount>/keys/<key> and update on
// <mount>/sign/<key>. Sign honours the context SignContext is given; a
// direct crypto.Signer call uses the client's timeout.
func NewDKIMSigner(client *api.Client, mount, key string) (*DKIMSigner, error) {
	if client == nil || mount == "" || key == "" {
		return nil, errors.New("vault: transit signer: client, mount and key are required")
	}
	k := transitKey{client: client, mount: strings.Trim(mount, "/"), name: key}
	data, err := k.describe(context.Background())
	if err != nil {
		return nil, fmt.Errorf("vault: transit key %s/%s: %w", k.mount, key, err)
	}
	if data == nil {
		return nil, fmt.Errorf("vault: transit key %s/%s: not found", k.mount, key)
	}
	pub, version, err := parseDKIMKey(data)
	if err != nil {
		return nil, fmt.Errorf("vault: transit key %s/%s: %w", k.mount, key, err)
	}
	return &DKIMSigner{key: k, version: version, pub: pub}, nil
}

// parseDKIMKey returns the latest version of a transit key and its
// public key: PEM SubjectPublicKeyInfo for RSA, base64 of the 32 raw bytes
// for Ed25519 (Vault's formats).
func parseDKIMKey(data map[string]any) (crypto.PublicKey, int, error) {
	typ, _ := data["type"].(string)
	parse, ok := dkimKeyParsers[typ]
	if !ok {
		return nil, 0, fmt.Errorf("key type %q cannot sign DKIM (want rsa-2048, rsa-3072, rsa-4096 or ed25519)", typ)
	}
	version, ok := intField(data["latest_version"])
	if !ok {
		return nil, 0, fmt.Errorf("latest_version: unexpected %T", data["latest_version"])
	}
	keys, _ := data["keys"].(map[string]any)
	entry, _ := keys[strconv.Itoa(version)].(map[string]any)
	encoded, _ := entry["public_key"].(string)
	if encoded == "" {
		return nil, 0, fmt.Errorf("no public key for version %d (type %q)", version, typ)
	}
	pub, err := parse(encoded)
	if err != nil {
		return nil, 0, err
	}
	return pub, version, nil
}

// dkimKeyParsers parse the public keys of the transit key types DKIM
// can sign with (RFC 8301, RFC 8463): RSA of at least 2048 bits (RFC 8301
// §3.2) and Ed25519. mailauth checks the key again before it signs.
var dkimKeyParsers = map[string]func(string) (crypto.PublicKey, error){
	"rsa-2048": parseRSAPublicPEM,
	"rsa-3072": parseRSAPublicPEM,
	"rsa-4096": parseRSAPublicPEM,
	"ed25519":  parseEd25519Public,
}

func parseEd25519Public(s string) (crypto.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("malformed Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

func parseRSAPublicPEM(s string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want RSA", pub)
	}
	return rsaPub, nil
}

// Public returns the public key of the pinned key version.
func (s *DKIMSigner) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer without a context (see SignContext).
func (s *DKIMSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), digest, opts)
}

// SignContext signs what go-msgauth hands a crypto.Signer:
//   - rsa-sha256 (RFC 6376 §3.3.1): the SHA-256 digest of the header hash
//     input, with opts SHA-256. Vault must not hash again: prehashed=true,
//     hash_algorithm=sha2-256 (for the DigestInfo), signature_algorithm
//     pkcs1v15.
//   - ed25519-sha256 (RFC 8463 §3): the same SHA-256 digest, with opts 0;
//     pure Ed25519 signs the digest as its message, so it is sent as the
//     input as it is.
//
// The signature is checked against the public key before it is returned: a
// wrong key version or a misbehaving Vault must not produce mail that fails
// DKIM at every receiver.
func (s *DKIMSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	params, err := s.signParams(digest, opts)
	if err != nil {
		return nil, err
	}
	encoded, err := s.key.sign(ctx, digest, s.version, params)
	if err != nil {
		return nil, fmt.Errorf("vault: transit sign: %w", err)
	}
	if encoded == "" {
		return nil, errors.New("vault: transit sign: empty response")
	}
	sig, ok := parseTransitSignature(encoded)
	if !ok || sig.version != s.version {
		return nil, fmt.Errorf("vault: transit sign: signature not in the form vault:v%d:<base64>", s.version)
	}
	if err := s.check(digest, sig.raw, opts); err != nil {
		return nil, fmt.Errorf("vault: transit sign: signature does not verify with key version %d: %w", s.version, err)
	}
	return sig.raw, nil
}

// signParams are the sign request's parameters beyond the input and the
// pinned version, by key type.
func (s *DKIMSigner) signParams(digest []byte, opts crypto.SignerOpts) (map[string]any, error) {
	switch s.pub.(type) {
	case *rsa.PublicKey:
		if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
			return nil, errors.New("vault: transit sign: RSA signs SHA-256 digests only")
		}
		return map[string]any{"prehashed": true, "hash_algorithm": "sha2-256", "signature_algorithm": "pkcs1v15"}, nil
	case ed25519.PublicKey:
		if opts != nil && opts.HashFunc() != 0 {
			return nil, errors.New("vault: transit sign: Ed25519 signs messages, not prehashed digests (RFC 8463 §3)")
		}
	}
	return nil, nil
}

// check verifies a signature Vault returned against the pinned public key.
func (s *DKIMSigner) check(digest, sig []byte, opts crypto.SignerOpts) error {
	switch pub := s.pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, opts.HashFunc(), digest, sig)
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, digest, sig) {
			return errors.New("invalid Ed25519 signature")
		}
	}
	return nil
}
