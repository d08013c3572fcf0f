package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Signer signs checkpoints. The production signer is Vault transit (an
// Ed25519 key that never leaves Vault); NewEd25519Signer is the local one.
type Signer interface {
	KeyID() string                                        // e.g. "vault:transit/tokenproxy-audit" or "local:<hex fingerprint>"
	Sign(ctx context.Context, msg []byte) (string, error) // returns "v<N>:<base64 signature>"
}

// CheckpointMessage is what a checkpoint signs: its own seq and the hash
// of the record before it. The version line lets the format change
// without a signature of one meaning being read as the other.
func CheckpointMessage(seq uint64, prev string) []byte {
	return fmt.Appendf(nil, "tokenproxy audit checkpoint v1\n%d\n%s\n", seq, prev)
}

type ed25519Signer struct {
	keyID   string
	version int
	priv    ed25519.PrivateKey
}

// NewEd25519Signer returns a Signer with a local key, for tests and for
// deployments without Vault. Its signatures read "v<version>:<base64>" as
// Vault transit's do (without Vault's "vault:" prefix).
func NewEd25519Signer(keyID string, version int, priv ed25519.PrivateKey) Signer {
	return ed25519Signer{keyID: keyID, version: version, priv: priv}
}

func (s ed25519Signer) KeyID() string { return s.keyID }

func (s ed25519Signer) Sign(_ context.Context, msg []byte) (string, error) {
	sig := ed25519.Sign(s.priv, msg)
	return "v" + strconv.Itoa(s.version) + ":" + base64.StdEncoding.EncodeToString(sig), nil
}

// Keys are the public keys Verify accepts: key ID → key version → key.
type Keys map[string]map[int]ed25519.PublicKey

// Add records a public key. k must not be nil: make(Keys) first.
func (k Keys) Add(keyID string, version int, pub ed25519.PublicKey) {
	if k[keyID] == nil {
		k[keyID] = make(map[int]ed25519.PublicKey)
	}
	k[keyID][version] = pub
}

// parseSig splits "v<N>:<base64>".
func parseSig(s string) (version int, sig []byte, err error) {
	v, b64, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(v, "v") {
		return 0, nil, errors.New(`signature is not "v<N>:<base64>"`)
	}
	version, err = strconv.Atoi(v[1:])
	if err != nil || version < 0 {
		return 0, nil, errors.New("signature has no valid key version")
	}
	sig, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, nil, errors.New("signature is not valid base64")
	}
	return version, sig, nil
}
