package mailauth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// transitSigner is a crypto.Signer whose private key never leaves Vault's
// transit secrets engine.
type transitSigner struct {
	logical  *vaultapi.Logical
	signPath string // <mount>/sign/<key>
	version  int    // the key version whose public key Public returns
	pub      crypto.PublicKey
}

// NewTransitSigner returns a DKIM signing key held by Vault's transit
// secrets engine at mount (e.g. "transit"), key name key, of type rsa-2048,
// rsa-3072, rsa-4096 or ed25519. It reads the key's latest version and its
// public key (GET <mount>/keys/<key>) and signs with that version only
// (POST <mount>/sign/<key>, key_version pinned): the public key published
// in DNS stays the one that verifies, even after the key is rotated in
// Vault. Rotating therefore means a new selector record, then a new signer.
//
// The client's token needs read on <mount>/keys/<key> and update on
// <mount>/sign/<key>. Sign honours the context Sign and Signature are given;
// a direct crypto.Signer call uses the client's timeout.
func NewTransitSigner(client *vaultapi.Client, mount, key string) (crypto.Signer, error) {
	if client == nil || mount == "" || key == "" {
		return nil, errors.New("mailauth: transit signer: client, mount and key are required")
	}
	mount = strings.Trim(mount, "/")
	secret, err := client.Logical().ReadWithContext(context.Background(), mount+"/keys/"+key)
	if err != nil {
		return nil, fmt.Errorf("mailauth: transit key %s/%s: %w", mount, key, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, fmt.Errorf("mailauth: transit key %s/%s: not found", mount, key)
	}
	pub, version, err := parseTransitKey(secret.Data)
	if err != nil {
		return nil, fmt.Errorf("mailauth: transit key %s/%s: %w", mount, key, err)
	}
	return &transitSigner{logical: client.Logical(), signPath: mount + "/sign/" + key, version: version, pub: pub}, nil
}

// parseTransitKey returns the latest version of a transit key and its
// public key: PEM SubjectPublicKeyInfo for RSA, base64 of the 32 raw bytes
// for Ed25519 (Vault's formats).
func parseTransitKey(data map[string]any) (crypto.PublicKey, int, error) {
	typ, _ := data["type"].(string)
	parse, ok := transitKeyParsers[typ]
	if !ok {
		return nil, 0, fmt.Errorf("key type %q cannot sign DKIM (want rsa-2048, rsa-3072, rsa-4096 or ed25519)", typ)
	}
	version, err := jsonInt(data["latest_version"])
	if err != nil {
		return nil, 0, fmt.Errorf("latest_version: %w", err)
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
	return pub, version, checkPublicKey(pub)
}

// transitKeyParsers parse the public keys of the transit key types DKIM
// can sign with (RFC 8301, RFC 8463).
var transitKeyParsers = map[string]func(string) (crypto.PublicKey, error){
	"rsa-2048": parseRSAPublicPEM,
	"rsa-3072": parseRSAPublicPEM,
	"rsa-4096": parseRSAPublicPEM,
	"ed25519":  parseEd25519Public,
}

func jsonInt(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	default:
		return 0, fmt.Errorf("unexpected %T", v)
	}
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
func (s *transitSigner) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer without a context (see SignContext).
func (s *transitSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
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
func (s *transitSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	body, err := s.signRequest(digest, opts)
	if err != nil {
		return nil, err
	}
	secret, err := s.logical.WriteWithContext(ctx, s.signPath, body)
	if err != nil {
		return nil, fmt.Errorf("mailauth: transit sign: %w", err)
	}
	if secret == nil || secret.Data == nil {
		return nil, errors.New("mailauth: transit sign: empty response")
	}
	encoded, _ := secret.Data["signature"].(string)
	sig, err := decodeTransitSignature(encoded, s.version)
	if err != nil {
		return nil, fmt.Errorf("mailauth: transit sign: %w", err)
	}
	if err := s.check(digest, sig, opts); err != nil {
		return nil, fmt.Errorf("mailauth: transit sign: signature does not verify with key version %d: %w", s.version, err)
	}
	return sig, nil
}

// signRequest builds the body of POST <mount>/sign/<key>.
func (s *transitSigner) signRequest(digest []byte, opts crypto.SignerOpts) (map[string]any, error) {
	body := map[string]any{
		"input":       base64.StdEncoding.EncodeToString(digest),
		"key_version": s.version,
	}
	switch s.pub.(type) {
	case *rsa.PublicKey:
		if opts == nil || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
			return nil, errors.New("mailauth: transit sign: RSA signs SHA-256 digests only")
		}
		body["prehashed"] = true
		body["hash_algorithm"] = "sha2-256"
		body["signature_algorithm"] = "pkcs1v15"
	case ed25519.PublicKey:
		if opts != nil && opts.HashFunc() != 0 {
			return nil, errors.New("mailauth: transit sign: Ed25519 signs messages, not prehashed digests (RFC 8463 §3)")
		}
	}
	return body, nil
}

// check verifies a signature Vault returned against the pinned public key.
func (s *transitSigner) check(digest, sig []byte, opts crypto.SignerOpts) error {
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

// decodeTransitSignature decodes Vault's "vault:v<version>:<base64>" and
// checks that the pinned version signed.
func decodeTransitSignature(s string, version int) ([]byte, error) {
	prefix := "vault:v" + strconv.Itoa(version) + ":"
	b64, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, fmt.Errorf("signature not in the form %s<base64>", prefix)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return sig, nil
}
