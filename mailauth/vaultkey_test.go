package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// The Vault transit signer lives in package vault (its own tests check
// construction errors and version pinning); here it signs whole messages,
// which our verifier and dkimpy check.

func vaultClient(t *testing.T, srv *vaulttest.Server) *vaultapi.Client {
	t.Helper()
	conf := vaultapi.DefaultConfig()
	conf.Address = srv.Addr
	c, err := vaultapi.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(srv.RootToken)
	return c
}

var transitKeySeq atomic.Int32

// createTransitKey creates a transit key of a type under a name no other
// test run on this server used.
func createTransitKey(t *testing.T, c *vaultapi.Client, typ string) string {
	t.Helper()
	name := "dkim-" + typ + "-" + strconv.Itoa(int(transitKeySeq.Add(1)))
	if _, err := c.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
		t.Fatalf("create transit key %s: %v", name, err)
	}
	return name
}

// TestTransitSigner signs with keys that stay in a real Vault (the dev
// server test/vaulttest builds) and verifies with our verifier and with
// dkimpy against a DNS record built from the transit public key.
func TestTransitSigner(t *testing.T) {
	requireTools(t)
	srv := vaulttest.Start(t)
	c := vaultClient(t, srv)
	for _, tt := range []struct{ typ, alg string }{{"rsa-2048", "rsa-sha256"}, {"ed25519", "ed25519-sha256"}} {
		t.Run(tt.typ, func(t *testing.T) {
			name := createTransitKey(t, c, tt.typ)
			key, err := vault.NewDKIMSigner(c, "transit", name)
			if err != nil {
				t.Fatal(err)
			}
			z := dnstest.Start(t)
			for _, r := range Records(RecordsInput{DKIMKeys: []DKIMKey{{Domain: "company.example", Selector: "vault1", Public: key.Public()}}}) {
				z.TXT(r.Name, r.Value)
			}
			m := signed(t, key, "company.example", "vault1", testMessage("support@company.example"))
			assertOurVerifyPasses(t, z, m, "company.example", "vault1", tt.alg)
			if out, err := runTool(t, m, python3, "dkimpy.py", "verify", dnsPort(t, z)); err != nil || !strings.HasPrefix(out, "pass a="+tt.alg) {
				t.Errorf("dkimpy does not verify the transit signature: %v\n%s", err, out)
			}

			// Rotating the key in Vault does not change what this signer
			// signs with: the published record keeps verifying.
			if _, err := c.Logical().Write("transit/keys/"+name+"/rotate", nil); err != nil {
				t.Fatal(err)
			}
			assertOurVerifyPasses(t, z, signed(t, key, "company.example", "vault1", testMessage("support@company.example")), "company.example", "vault1", tt.alg)
			rotated, err := vault.NewDKIMSigner(c, "transit", name)
			if err != nil {
				t.Fatal(err)
			}
			if rotated.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Error("a new signer after rotation still has the old public key")
			}
		})
	}
}

// TestTransitSignerVaultDown: a key whose Vault is gone fails to sign, with
// the context's or the client's error, and Sign reports it.
func TestTransitSignerVaultDown(t *testing.T) {
	srv := vaulttest.Start(t)
	c := vaultClient(t, srv)
	key, err := vault.NewDKIMSigner(c, "transit", createTransitKey(t, c, "ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetMaxRetries(0) // the client's retries would only slow the test down
	srv.Kill()
	cfg := SignerConfig{Domain: "company.example", Selector: "s", Key: key}
	if err := Sign(context.Background(), cfg, strings.NewReader(string(testMessage("a@company.example"))), &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "transit sign") {
		t.Errorf("Sign with Vault down: err = %v", err)
	}
}

// TestTransitARCSeal: an ARC seal whose RSA key stays in Vault transit
// verifies with ours and with dkimpy; an Ed25519 transit key is refused
// (ARC verifiers know rsa-sha256 only: dkimpy fails ed25519-sha256 seals).
func TestTransitARCSeal(t *testing.T) {
	requireTools(t)
	srv := vaulttest.Start(t)
	c := vaultClient(t, srv)
	key, err := vault.NewDKIMSigner(c, "transit", createTransitKey(t, c, "rsa-2048"))
	if err != nil {
		t.Fatal(err)
	}
	z, custKey := arcZone(t)
	publishKey(t, z, "company.example", "vault1", key.Public())
	s := ARCSealer{Domain: "company.example", Selector: "vault1", Key: key}
	in := customerSigned(t, custKey)
	seal, err := s.Seal(context.Background(), nil, "company.example; dkim=pass header.d=customer.example", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(seal.Fields), in...)
	if v := arcVerify(t, z, m); v.ARC.Result != ResultPass {
		t.Fatalf("our verifier: %+v\n%s", v.ARC, m)
	}
	if out, ok := dkimpyVerify(t, dnsPort(t, z), m); !ok {
		t.Errorf("dkimpy does not verify the transit seal:\n%s\n%s", out, m)
	}

	ed, err := vault.NewDKIMSigner(c, "transit", createTransitKey(t, c, "ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (ARCSealer{Domain: "company.example", Selector: "vault2", Key: ed}).Check(); err == nil || !strings.Contains(err.Error(), "RSA") {
		t.Errorf("an Ed25519 sealing key: err = %v, want a refusal naming RSA", err)
	}
}
