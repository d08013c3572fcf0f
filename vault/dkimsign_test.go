package vault_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// contextSigner is what package mailauth asks of a remote key, beyond
// crypto.Signer, to bound each signature by the message's context.
type contextSigner interface {
	crypto.Signer
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

var _ contextSigner = (*vault.DKIMSigner)(nil)

// newSigningKey creates a transit key of a type under a name no other
// test run on this server used, and returns its name.
func newSigningKey(t *testing.T, srv *vaulttest.Server, typ string) string {
	t.Helper()
	name := fmt.Sprintf("dkim-%s-%d", typ, keySeq.Add(1))
	mustWrite(t, rootClient(t, srv), "transit/keys/"+name, map[string]any{"type": typ})
	return name
}

// verifyDKIMSignature checks sig over digest with pub, as a DKIM verifier
// would: PKCS #1 v1.5 with SHA-256 for RSA (RFC 6376 §3.3.1), pure Ed25519
// over the digest (RFC 8463 §3).
func verifyDKIMSignature(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, digest, sig)
	}
	return false
}

// TestDKIMSigner signs with keys that stay in a real Vault and verifies
// with the pinned public key, before and after a rotation. (mailauth's
// tests verify such signatures in whole messages, with our verifier and
// dkimpy.)
func TestDKIMSigner(t *testing.T) {
	root := rootClient(t, shared)
	digest := sha256.Sum256([]byte("header hash input"))
	for _, tt := range []struct {
		typ  string
		opts crypto.SignerOpts
	}{{"rsa-2048", crypto.SHA256}, {"ed25519", crypto.Hash(0)}} {
		t.Run(tt.typ, func(t *testing.T) {
			name := newSigningKey(t, shared, tt.typ)
			key, err := vault.NewDKIMSigner(root, "transit", name)
			if err != nil {
				t.Fatal(err)
			}
			sign := func() []byte {
				t.Helper()
				sig, err := key.Sign(nil, digest[:], tt.opts)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				return sig
			}
			if !verifyDKIMSignature(key.Public(), digest[:], sign()) {
				t.Fatal("signature does not verify with Public")
			}
			// Rotating the key in Vault does not change what this signer
			// signs with: the published record keeps verifying.
			mustWrite(t, root, "transit/keys/"+name+"/rotate", nil)
			if !verifyDKIMSignature(key.Public(), digest[:], sign()) {
				t.Error("after rotation, the signature does not verify with the pinned public key")
			}
			rotated, err := vault.NewDKIMSigner(root, "transit", name)
			if err != nil {
				t.Fatal(err)
			}
			if rotated.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Error("a new signer after rotation still has the old public key")
			}
		})
	}
}

func TestDKIMSignerErrors(t *testing.T) {
	srv := vaulttest.Start(t)
	c := rootClient(t, srv)
	aes := newSigningKey(t, srv, "aes256-gcm96")
	ecdsa := newSigningKey(t, srv, "ecdsa-p256")
	tests := []struct {
		name, mount, key, want string
	}{
		{"missing key", "transit", "no-such-key", "not found"},
		{"encryption key", "transit", aes, `key type "aes256-gcm96" cannot sign DKIM`},
		{"ECDSA key", "transit", ecdsa, `key type "ecdsa-p256" cannot sign DKIM`},
		{"no mount", "", "x", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vault.NewDKIMSigner(c, tt.mount, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}

	// A key whose Vault is gone fails to sign, with the context's or the
	// client's error, and Sign reports it.
	key, err := vault.NewDKIMSigner(c, "transit", newSigningKey(t, srv, "ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetMaxRetries(0) // the client's retries would only slow the test down
	srv.Kill()
	digest := sha256.Sum256([]byte("header hash input"))
	if _, err := key.SignContext(context.Background(), digest[:], crypto.Hash(0)); err == nil || !strings.Contains(err.Error(), "transit sign") {
		t.Errorf("Sign with Vault down: err = %v", err)
	}
}
