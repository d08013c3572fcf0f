package integration

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestLeastPrivilegePolicy applies deploy/vault/tokenproxy.hcl to the real
// Vault server, runs the proxy's key life cycle with a token that holds
// only that policy (no default policy), and checks that capabilities
// outside it are denied.
func TestLeastPrivilegePolicy(t *testing.T) {
	ctx := context.Background()
	hcl, err := os.ReadFile("../../deploy/vault/tokenproxy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	root := rootAPIClient(t, shared)
	if _, err := root.Logical().Write("transit/keys/tokenproxy", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tokenproxy-audit", "tokenproxy-other"} {
		if _, err := root.Logical().Write("transit/keys/"+k, map[string]any{"type": "ed25519"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sys().PutPolicy("tokenproxy", string(hcl)); err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	secret, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"tokenproxy"}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	token := secret.Auth.ClientToken

	// The life cycle: first start, tokens, KEK rotation + rewrap, a new
	// record key, status, restart.
	path := filepath.Join(t.TempDir(), "map.db")
	open := func() (*boltstore.Store, *vault.Transit, *vault.Keyring) {
		t.Helper()
		db, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		kek, err := vault.NewTransit(ctx, vault.TransitConfig{Address: shared.Addr, Key: "tokenproxy", Token: token})
		if err != nil {
			t.Fatalf("NewTransit under the policy: %v", err)
		}
		keys, err := vault.Load(ctx, kek, db)
		if err != nil {
			t.Fatalf("Load under the policy: %v", err)
		}
		return db, kek, keys
	}
	db, kek, keys := open()
	m, err := tokenize.NewMap(db, keys, tokenize.Options{Format: format, Tenant: "policy"})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := m.Tokenize(ctx, "policy.customer@example.net", "")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := vault.RotateKEK(ctx, kek, db); err != nil {
		t.Fatalf("rotate under the policy: %v", err)
	}
	if _, err := vault.AddVersion(ctx, kek, db, vault.PurposeRecord); err != nil {
		t.Fatalf("new record key under the policy: %v", err)
	}
	if _, err := kek.Status(ctx); err != nil {
		t.Fatalf("status under the policy: %v", err)
	}
	checkAuditSigning(t, kek)
	kek.Close()
	db.Close()
	db, kek, keys = open()
	defer db.Close()
	defer kek.Close()
	m, _ = tokenize.NewMap(db, keys, tokenize.Options{Format: format, Tenant: "policy"})
	defer m.Close()
	if e, err := m.Resolve(ctx, iss.Address); err != nil || e.Original != "policy.customer@example.net" {
		t.Fatalf("resolve after restart: %+v %v", e, err)
	}

	// Anything else is denied.
	c := rootAPIClient(t, shared)
	c.SetToken(token)
	denied := []struct{ op, path string }{
		{"write", "transit/encrypt/tokenproxy"},
		{"write", "transit/datakey/plaintext/tokenproxy"},
		{"write", "transit/keys/tokenproxy/config"},
		{"read", "transit/export/encryption-key/tokenproxy"},
		{"write", "transit/keys/other"},
		{"read", "sys/policies/acl/tokenproxy"},
		// Checkpoints are signed with tokenproxy-audit only, and the proxy
		// never rotates or reconfigures that key.
		{"write", "transit/sign/tokenproxy"},
		{"write", "transit/sign/tokenproxy-other"},
		{"read", "transit/keys/tokenproxy-other"},
		{"write", "transit/keys/tokenproxy-audit/rotate"},
		{"write", "transit/keys/tokenproxy-audit/config"},
		{"read", "transit/export/signing-key/tokenproxy-audit"},
	}
	for _, d := range denied {
		var err error
		if d.op == "read" {
			_, err = c.Logical().Read(d.path)
		} else {
			_, err = c.Logical().Write(d.path, map[string]any{"plaintext": "AA==", "deletion_allowed": true})
		}
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("%s %s under the policy: %v, want 403", d.op, d.path, err)
		}
	}
}

// checkAuditSigning signs a checkpoint with the audit key through kek's
// login and verifies it with the public key read under the same login.
func checkAuditSigning(t *testing.T, kek *vault.Transit) {
	t.Helper()
	ctx := context.Background()
	s, err := kek.AuditSigner(ctx, "tokenproxy-audit")
	if err != nil {
		t.Fatalf("audit signer: %v", err)
	}
	msg := []byte("checkpoint\n")
	sig, err := s.Sign(ctx, msg)
	if err != nil {
		t.Fatalf("sign a checkpoint: %v", err)
	}
	pubs, err := s.PublicKeys(ctx)
	if err != nil {
		t.Fatalf("audit public keys: %v", err)
	}
	version, b64, _ := strings.Cut(sig, ":")
	n, _ := strconv.Atoi(strings.TrimPrefix(version, "v"))
	raw, _ := base64.StdEncoding.DecodeString(b64)
	if pub, ok := pubs[n]; !ok || !ed25519.Verify(pub, msg, raw) {
		t.Fatalf("checkpoint signature %.12q… does not verify", sig)
	}
	if _, err := kek.AuditSigner(ctx, "tokenproxy-other"); !errors.Is(err, vault.ErrVaultDenied) {
		t.Errorf("audit signer on tokenproxy-other: %v, want ErrVaultDenied", err)
	}
}

func rootAPIClient(t *testing.T, srv *vaulttest.Server) *api.Client {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = srv.Addr
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(srv.RootToken)
	return c
}
