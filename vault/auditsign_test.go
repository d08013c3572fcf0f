package vault_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/vault"
)

// auditSigner is what package audit asks of a signer, plus PublicKeys for
// verification: both signers must have this method set.
type auditSigner interface {
	KeyID() string
	Sign(ctx context.Context, msg []byte) (string, error)
	PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error)
}

var (
	_ auditSigner = (*vault.TransitSigner)(nil)
	_ auditSigner = (*vault.LocalSigner)(nil)
)

// mustSign signs msg, checks the signature names version want and
// verifies with that version's public key, and returns the signature.
func mustSign(t *testing.T, s auditSigner, msg []byte, want int) string {
	t.Helper()
	sig, err := s.Sign(context.Background(), msg)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	pubs, err := s.PublicKeys(context.Background())
	if err != nil {
		t.Fatalf("PublicKeys: %v", err)
	}
	if v := verifyAudit(t, pubs, msg, sig); v != want {
		t.Fatalf("signature %.12q… made by version %d, want %d", sig, v, want)
	}
	return sig
}

// verifyAudit checks a "v<N>:<base64>" signature as package audit will,
// and returns N.
func verifyAudit(t *testing.T, pubs map[int]ed25519.PublicKey, msg []byte, sig string) int {
	t.Helper()
	version, b64, ok := strings.Cut(sig, ":")
	n, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
	if !ok || !strings.HasPrefix(version, "v") || err != nil {
		t.Fatalf("signature %q is not v<N>:<base64>", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("signature %q: %v", sig, err)
	}
	pub, ok := pubs[n]
	if !ok {
		t.Fatalf("no public key for version %d (have %v)", n, slices.Sorted(maps.Keys(pubs)))
	}
	if !ed25519.Verify(pub, msg, raw) {
		t.Fatalf("signature %.12q… does not verify with version %d", sig, n)
	}
	return n
}

func localSigner(t *testing.T, l *vault.Local) *vault.LocalSigner {
	t.Helper()
	s, err := l.AuditSigner()
	if err != nil {
		t.Fatalf("AuditSigner: %v", err)
	}
	return s
}

func TestLocalAuditSigner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyring.json")
	l := openLocal(t, path, true)
	s := localSigner(t, l)
	id := s.KeyID()
	if !strings.HasPrefix(id, "local:") || len(id) != len("local:")+16 {
		t.Errorf("KeyID = %q, want local:<16 hex digits>", id)
	}
	msg := []byte("checkpoint 1\n")
	sig1 := mustSign(t, s, msg, 1)
	if pubs, _ := s.PublicKeys(ctx); len(pubs) != 1 {
		t.Errorf("PublicKeys has versions %v, want [1]", slices.Sorted(maps.Keys(pubs)))
	}

	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	sig2 := mustSign(t, s, msg, 2)
	pubs, _ := s.PublicKeys(ctx)
	if v := verifyAudit(t, pubs, msg, sig1); v != 1 {
		t.Errorf("the v1 signature verifies as version %d after rotation", v)
	}
	if pubs[1].Equal(pubs[2]) {
		t.Error("rotation kept the same signing key")
	}
	if s.KeyID() != id || localSigner(t, l).KeyID() != id {
		t.Error("rotation changed the key ID")
	}

	// Reopening the same file derives the same keys: Ed25519 signatures are
	// deterministic, so the same message gives the same signature.
	again := localSigner(t, openLocal(t, path, false))
	if again.KeyID() != id {
		t.Errorf("KeyID after reopen = %q, want %q", again.KeyID(), id)
	}
	if sig, _ := again.Sign(ctx, msg); sig != sig2 {
		t.Error("signature differs after reopening the key file")
	}
	if reopened, _ := again.PublicKeys(ctx); !maps.EqualFunc(pubs, reopened, func(a, b ed25519.PublicKey) bool { return a.Equal(b) }) {
		t.Error("public keys differ after reopening the key file")
	}

	other := localSigner(t, openLocal(t, filepath.Join(t.TempDir(), "other.json"), true))
	if other.KeyID() == id {
		t.Error("two keyrings have the same key ID")
	}
}

// TestLocalAuditSignerDerivesKeys: the signing key is derived from the
// KEK, not the KEK itself used as a seed.
func TestLocalAuditSignerDerivesKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	pubs, err := localSigner(t, openLocal(t, path, true)).PublicKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Keys map[string]string }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	kek, err := base64.StdEncoding.DecodeString(file.Keys["1"])
	if err != nil || len(kek) != ed25519.SeedSize {
		t.Fatalf("key file version 1: %d bytes, %v", len(kek), err)
	}
	if pubs[1].Equal(ed25519.NewKeyFromSeed(kek).Public()) {
		t.Error("the KEK itself is the signing seed")
	}
}

func TestTransitAuditSigner(t *testing.T) {
	const key = "tokenproxy-audit"
	ctx := context.Background()
	root := rootClient(t, shared)
	mustWrite(t, root, "transit/keys/"+key, map[string]any{"type": "ed25519"})
	t.Cleanup(func() { deleteTransitKey(t, root, key) })
	tr := newTransit(t, rootConfig(shared, "unused"))

	s, err := tr.AuditSigner(ctx, key)
	if err != nil {
		t.Fatalf("AuditSigner: %v", err)
	}
	if s.KeyID() != "vault:transit/tokenproxy-audit" {
		t.Errorf("KeyID = %q", s.KeyID())
	}
	msg := []byte("checkpoint 1\n")
	sig1 := mustSign(t, s, msg, 1)

	mustWrite(t, root, "transit/keys/"+key+"/rotate", nil)
	mustSign(t, s, msg, 2)
	pubs, err := s.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(pubs)); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("PublicKeys versions %v, want [1 2]", got)
	}
	verifyAudit(t, pubs, msg, sig1)

	t.Run("denied sign", func(t *testing.T) {
		policy := `path "transit/keys/` + key + `" { capabilities = ["read"] }`
		s, err := newTransit(t, tokenConfig(t, root, "audit-no-sign", policy)).AuditSigner(ctx, key)
		if err != nil {
			t.Fatalf("AuditSigner with read on the key: %v", err)
		}
		_, err = s.Sign(ctx, msg)
		want := `vault: permission denied on transit/sign/tokenproxy-audit: the token's policy must grant "update" on this path`
		if !errors.Is(err, vault.ErrVaultDenied) || err.Error() != want {
			t.Errorf("Sign without the sign grant: %v\nwant ErrVaultDenied: %s", err, want)
		}
	})
	t.Run("denied read", func(t *testing.T) {
		policy := `path "transit/sign/` + key + `" { capabilities = ["update"] }`
		_, err := newTransit(t, tokenConfig(t, root, "audit-no-read", policy)).AuditSigner(ctx, key)
		want := `vault: permission denied on transit/keys/tokenproxy-audit: the token's policy must grant "read" on this path`
		if !errors.Is(err, vault.ErrVaultDenied) || err.Error() != want {
			t.Errorf("AuditSigner without the read grant: %v\nwant ErrVaultDenied: %s", err, want)
		}
	})
	t.Run("deleted after start", func(t *testing.T) {
		deleteTransitKey(t, root, key)
		_, err := s.Sign(ctx, msg)
		want := "vault: audit signing key transit/keys/tokenproxy-audit does not exist: create it with `vault write -f transit/keys/tokenproxy-audit type=ed25519`"
		if err == nil || err.Error() != want {
			t.Errorf("Sign with the key deleted: %v\nwant: %s", err, want)
		}
	})
}

func TestTransitAuditSignerKeyProblems(t *testing.T) {
	aes := createKey(t, shared, "audit-aes")
	rsa := "audit-rsa"
	mustWrite(t, rootClient(t, shared), "transit/keys/"+rsa, map[string]any{"type": "rsa-2048"})
	tr := newTransit(t, rootConfig(shared, "unused"))
	for _, tc := range []struct {
		name, key, want string
	}{
		{"missing", "audit-never-created", "vault: audit signing key transit/keys/audit-never-created does not exist: create it with `vault write -f transit/keys/audit-never-created type=ed25519`"},
		{"aes", aes, "vault: audit signing key transit/keys/" + aes + " is of type aes256-gcm96; want ed25519"},
		{"rsa", rsa, "vault: audit signing key transit/keys/audit-rsa is of type rsa-2048; want ed25519"},
		{"no name", "", "vault: audit signing key: no key name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.AuditSigner(context.Background(), tc.key)
			if err == nil || err.Error() != tc.want {
				t.Errorf("AuditSigner(%q) = %v\nwant: %s", tc.key, err, tc.want)
			}
		})
	}
}

// tokenConfig returns the config of a Transit logged in with a token that
// holds only the given policy.
func tokenConfig(t *testing.T, root *api.Client, name, policy string) vault.TransitConfig {
	t.Helper()
	putPolicy(t, root, name, policy)
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return vault.TransitConfig{Address: shared.Addr, Key: "unused", Token: tok.Auth.ClientToken}
}

// deleteTransitKey deletes a key, so a later run (-count) on the same
// server starts again at version 1.
func deleteTransitKey(t *testing.T, root *api.Client, key string) {
	t.Helper()
	if _, err := root.Logical().Write("transit/keys/"+key+"/config", map[string]any{"deletion_allowed": true}); err != nil {
		return // already deleted
	}
	if _, err := root.Logical().Delete("transit/keys/" + key); err != nil {
		t.Errorf("delete transit key %s: %v", key, err)
	}
}
