package vault

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/vault/api"
)

// The audit trail signs its checkpoints with Ed25519. Both signers below
// have the method set of audit.Signer (KeyID, Sign) plus PublicKeys for
// verification; this package does not import audit. A signature is
// "v<N>:<base64 std>", N the key version that signed.

// TransitSigner signs with an Ed25519 key of Vault's transit engine: the
// private key never leaves Vault. It is safe for concurrent use.
type TransitSigner struct {
	t   *Transit // its logged-in client, timeout and error wording
	key transitKey
}

// AuditSigner returns a signer for the transit key named key, on the same
// mount and login as the key encryption key. It reads the key, so a
// missing key or one of another type fails here, at start, rather than at
// the first checkpoint. The token needs read on <mount>/keys/<key> and
// update on <mount>/sign/<key>.
func (t *Transit) AuditSigner(ctx context.Context, key string) (*TransitSigner, error) {
	if key == "" {
		return nil, errors.New("vault: audit signing key: no key name")
	}
	s := &TransitSigner{t: t, key: transitKey{client: t.client, mount: t.mount, name: key}}
	if _, err := s.readKey(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// KeyID names the key, e.g. "vault:transit/tokenproxy-audit".
func (s *TransitSigner) KeyID() string { return "vault:" + s.key.mount + "/" + s.key.name }

// Sign signs msg with the key's latest version. Ed25519 signs the message
// itself (no prehash), so msg is sent as the input as it is.
func (s *TransitSigner) Sign(ctx context.Context, msg []byte) (string, error) {
	path := s.key.signPath()
	ctx, cancel := s.t.requestContext(ctx)
	defer cancel()
	sig, err := s.key.sign(ctx, msg, 0, nil)
	if err != nil {
		return "", s.explain(ctx, vaultCall{path: path, capability: "update"}, err)
	}
	if sig == "" {
		return "", fmt.Errorf("vault: %s: answer has no signature", path)
	}
	return auditSignature(path, sig)
}

// PublicKeys returns the public key of every version Vault still holds,
// by version, for verifying checkpoints signed before a rotation.
func (s *TransitSigner) PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error) {
	data, err := s.readKey(ctx)
	if err != nil {
		return nil, err
	}
	path := s.key.keyPath()
	versions, _ := data["keys"].(map[string]any)
	pubs := make(map[int]ed25519.PublicKey, len(versions))
	for v, entry := range versions {
		n, err := strconv.Atoi(v)
		e, _ := entry.(map[string]any)
		b64, _ := e["public_key"].(string)
		pub, perr := base64.StdEncoding.DecodeString(b64)
		if err != nil || n < 1 || perr != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("vault: %s: version %q has no Ed25519 public key", path, v)
		}
		pubs[n] = ed25519.PublicKey(pub)
	}
	if len(pubs) == 0 {
		return nil, fmt.Errorf("vault: %s: answer has no key versions", path)
	}
	return pubs, nil
}

// readKey reads the key's description and checks it is an Ed25519 key:
// another type either cannot sign or signs with another algorithm than
// the verifier expects.
func (s *TransitSigner) readKey(ctx context.Context) (map[string]any, error) {
	path := s.key.keyPath()
	ctx, cancel := s.t.requestContext(ctx)
	defer cancel()
	data, err := s.key.describe(ctx)
	if err != nil {
		return nil, s.explain(ctx, vaultCall{path: path, capability: "read"}, err)
	}
	if data == nil {
		return nil, s.missing(nil)
	}
	if typ, _ := data["type"].(string); typ != "ed25519" {
		return nil, fmt.Errorf("vault: audit signing key %s is of type %s; want ed25519", path, typ)
	}
	return data, nil
}

// explain is Transit.explain, except that a missing key is named: the
// Transit's own wording names the key encryption key.
func (s *TransitSigner) explain(ctx context.Context, c vaultCall, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) && isKeyMissing(re) {
		return s.missing(err)
	}
	return s.t.explain(ctx, c, err)
}

func (s *TransitSigner) missing(cause error) error {
	path := s.key.keyPath()
	return newVaultError(nil, cause, "vault: audit signing key %s does not exist: create it with `vault write -f %s type=ed25519`", path, path)
}

// auditSignature turns transit's "vault:v<N>:<base64>" into "v<N>:<base64>".
func auditSignature(path, s string) (string, error) {
	sig, ok := parseTransitSignature(s)
	if !ok || len(sig.raw) != ed25519.SignatureSize {
		return "", fmt.Errorf("vault: %s: signature is not an Ed25519 signature in the form vault:v<N>:<base64>", path)
	}
	return "v" + strconv.Itoa(sig.version) + ":" + sig.b64, nil
}

// auditSignInfo is the HKDF info (RFC 5869 §3.2) that sets the audit
// signing seed apart from every other use of a local key encryption key.
const auditSignInfo = "tokenproxy audit signing v1"

// LocalSigner signs with Ed25519 keys derived from the local keyring: one
// per key encryption key version, so `keys rotate` starts a new signing
// version while the old ones stay derivable from the file. Nothing but the
// key file is stored, and the seeds are never logged or returned. It is
// safe for concurrent use.
type LocalSigner struct {
	l     *Local
	keyID string
}

// AuditSigner returns the keyring's audit signer.
func (l *Local) AuditSigner() (*LocalSigner, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The ID is the fingerprint of version 1, which every rotation keeps:
	// it names the keyring's signing keys for good, across rotations.
	first, err := l.auditKey(1)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	sum := sha256.Sum256(first.Public().(ed25519.PublicKey))
	return &LocalSigner{l: l, keyID: "local:" + hex.EncodeToString(sum[:8])}, nil
}

// auditKey derives the signing key of KEK version v. The caller holds l.mu.
// No salt: the KEK is already a uniformly random 256-bit key.
func (l *Local) auditKey(v int) (ed25519.PrivateKey, error) {
	kek, err := l.key(v)
	if err != nil {
		return nil, err
	}
	seed, err := hkdf.Key(sha256.New, kek, nil, auditSignInfo, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// KeyID names the keyring's signing keys: "local:" and 16 hex digits.
func (s *LocalSigner) KeyID() string { return s.keyID }

// Sign signs msg with the key of the current KEK version. It makes no
// call, so ctx is not used.
func (s *LocalSigner) Sign(_ context.Context, msg []byte) (string, error) {
	s.l.mu.Lock()
	v := s.l.file.Current
	priv, err := s.l.auditKey(v)
	s.l.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("audit signing key: %w", err)
	}
	return "v" + strconv.Itoa(v) + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg)), nil
}

// PublicKeys returns the public key of every KEK version in the file, by
// version. It makes no call; ctx is there to match TransitSigner.
func (s *LocalSigner) PublicKeys(_ context.Context) (map[int]ed25519.PublicKey, error) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	pubs := make(map[int]ed25519.PublicKey, len(s.l.file.Keys))
	for v := range s.l.file.Keys {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%w: key file %s: version %q is not a number", ErrKeyFile, s.l.path, v)
		}
		priv, err := s.l.auditKey(n)
		if err != nil {
			return nil, fmt.Errorf("audit signing key: %w", err)
		}
		pubs[n] = priv.Public().(ed25519.PublicKey)
	}
	return pubs, nil
}
