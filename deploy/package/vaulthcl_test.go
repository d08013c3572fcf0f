package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	hclv1 "github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The Vault files of deploy/vault are checked here rather than in the
// proxy's module: HCL is a dependency of this (packaging) module only.
// test/deploy runs these tests as part of `go test ./...`.

const vaultDir = "../vault"

// agentTokenFile is where Vault Agent writes the token; the proxy's
// keys.vault.auth.token_file must name it (deploy/README.md,
// deploy/package/tokenproxy.yaml, tokenproxy-vault-agent.conf).
const agentTokenFile = "/run/tokenproxy-vault-agent/token"

// parseBoth parses a file with HCL 2 (native syntax) and with HCL 1, the
// parser Vault itself uses for agent and policy files: a file must be
// valid in both.
func parseBoth(t *testing.T, name string) *hclsyntax.Body {
	t.Helper()
	path := filepath.Join(vaultDir, name)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hclv1.ParseBytes(src); err != nil {
		t.Fatalf("%s: HCL 1 (Vault's parser): %v", path, err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		t.Fatalf("%s: HCL 2: %s", path, diags.Error())
	}
	return f.Body.(*hclsyntax.Body)
}

// block returns the only block of a type (and labels), failing otherwise.
func block(t *testing.T, body *hclsyntax.Body, typ string, labels ...string) *hclsyntax.Body {
	t.Helper()
	var found []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ && strings.Join(b.Labels, "/") == strings.Join(labels, "/") {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q block, found %d", typ, labels, len(found))
	}
	return found[0].Body
}

// attr evaluates an attribute without variables or functions.
func attr(t *testing.T, body *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		t.Fatalf("attribute %s missing", name)
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() {
		t.Fatalf("attribute %s: %s", name, diags.Error())
	}
	return v
}

func stringAt(t *testing.T, obj cty.Value, key string) string {
	t.Helper()
	if !obj.Type().IsObjectType() || !obj.Type().HasAttribute(key) {
		t.Fatalf("config has no %s", key)
	}
	v := obj.GetAttr(key)
	if v.Type() != cty.String {
		t.Fatalf("%s: want a string, got %s", key, v.Type().FriendlyName())
	}
	return v.AsString()
}

func TestVaultAgentConfig(t *testing.T) {
	body := parseBoth(t, "agent.hcl")

	vault := block(t, body, "vault")
	if addr := attr(t, vault, "address").AsString(); !strings.HasPrefix(addr, "https://") {
		t.Errorf("vault.address %q: want https", addr)
	}

	autoAuth := block(t, body, "auto_auth")
	method := block(t, autoAuth, "method", "approle")
	cfg := attr(t, method, "config")
	for _, key := range []string{"role_id_file_path", "secret_id_file_path"} {
		if p := stringAt(t, cfg, key); !strings.HasPrefix(p, "/run/credentials/tokenproxy-vault-agent.service/") {
			t.Errorf("approle %s = %q: want a systemd credential of tokenproxy-vault-agent.service", key, p)
		}
	}
	// The credentials directory is read-only: Vault Agent's default
	// (delete the secret_id file after reading it) would fail there.
	if v := cfg.GetAttr("remove_secret_id_file_after_reading"); v.Type() != cty.Bool || v.True() {
		t.Errorf("remove_secret_id_file_after_reading must be false")
	}

	sink := block(t, autoAuth, "sink", "file")
	if p := stringAt(t, attr(t, sink, "config"), "path"); p != agentTokenFile {
		t.Errorf("sink path %q, want %q (the proxy's token_file)", p, agentTokenFile)
	}
}

// TestVaultAgentFilesAgree checks that the units, the drop-in and the
// configuration name the same token file and credentials.
func TestVaultAgentFilesAgree(t *testing.T) {
	for _, f := range []string{"../vault/tokenproxy-vault-agent.conf", "../vault/agent.hcl", "tokenproxy.yaml", "../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), agentTokenFile) {
			t.Errorf("%s does not mention %s", f, agentTokenFile)
		}
	}
	unit, err := os.ReadFile("../vault/tokenproxy-vault-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RuntimeDirectory=tokenproxy-vault-agent", "User=tokenproxy", "LoadCredential=role_id:", "LoadCredential=secret_id:", "-config=/etc/tokenproxy/vault-agent.hcl"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("tokenproxy-vault-agent.service lacks %q", want)
		}
	}
}

func TestVaultPolicyParses(t *testing.T) {
	body := parseBoth(t, "tokenproxy.hcl")
	n := 0
	for _, b := range body.Blocks {
		if b.Type != "path" || len(b.Labels) != 1 {
			t.Errorf("unexpected block %s %q", b.Type, b.Labels)
			continue
		}
		if attr(t, b.Body, "capabilities").LengthInt() == 0 {
			t.Errorf("path %q grants nothing", b.Labels[0])
		}
		n++
	}
	if n == 0 {
		t.Fatal("no path blocks")
	}
}
