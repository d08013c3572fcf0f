package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
)

// TestDKIMWithVaultTransitKey: with keys.provider vault and
// outbound.dkim.vault_key, `proxy dns` publishes the transit key's public
// half, and the outbound route signs through Vault on the key provider's
// login (the wiring; the signer itself is tested in mailauth).
func TestDKIMWithVaultTransitKey(t *testing.T) {
	srv := vaulttest.Start(t)
	conf := vaultapi.DefaultConfig()
	conf.Address = srv.Addr
	vc, err := vaultapi.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(srv.RootToken)
	for name, typ := range map[string]string{"tokenproxy": "aes256-gcm96", "tokenproxy-audit": "ed25519", "dkim": "ed25519"} {
		if _, err := vc.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := vc.Logical().Read("transit/keys/dkim")
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Data["keys"].(map[string]any)["1"].(map[string]any)["public_key"].(string)

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(srv.RootToken), 0o600)
	cfg := filepath.Join(dir, "tokenproxy.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
keys: {provider: vault, vault: {address: %q, auth: {token_file: %q}}}
outbound: {dkim: {domain: company.example, selector: v1, vault_key: dkim}}
`, srv.Addr, tokenFile)), 0o600)

	c := newCLI(t)
	if out := c.mustRun("--config", cfg, "dns"); !strings.Contains(out, `v1._domainkey.company.example. IN TXT "v=DKIM1; k=ed25519; p=`+pub+`"`) {
		t.Fatalf("dns output lacks the transit public key %s:\n%s", pub, out)
	}
	out := c.mustRun("--config", cfg, "demo")
	_, atCustomer, _ := strings.Cut(out, "4. What the customer's mail server received")
	if !strings.Contains(atCustomer, "| DKIM-Signature: a=ed25519-sha256;") || !strings.Contains(atCustomer, " s=v1;") {
		t.Fatalf("demo output:\n%s", out)
	}
}
