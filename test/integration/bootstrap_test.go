package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestBootstrapAppRole runs deploy/vault/bootstrap-approle.sh against a
// Vault server with neither transit nor approle mounted, twice (the first
// run mounts them, the second finds them: it must be idempotent), and
// starts the key provider with the files it wrote: AppRole login with a
// response-wrapped secret_id, under the least-privilege policy, and
// signing with the audit key the script created.
func TestBootstrapAppRole(t *testing.T) {
	srv := vaulttest.Start(t)
	root := rootAPIClient(t, srv)
	if err := root.Sys().Unmount("transit"); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().DisableAuth("approle"); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		out := filepath.Join(t.TempDir(), "approle")
		stdout, err := runBootstrap(srv, out)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, errText(err))
		}
		if !strings.Contains(string(stdout), "secret_id_wrapped: true") {
			t.Fatalf("run %d printed:\n%s", run, stdout)
		}
		for _, f := range []string{"role_id", "secret_id.wrapped"} {
			info, err := os.Stat(filepath.Join(out, f))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("run %d: %s: %v %v", run, f, info, err)
			}
		}
		ctx := context.Background()
		kek, err := vault.NewTransit(ctx, vault.TransitConfig{Address: srv.Addr, Key: "tokenproxy", AppRole: &vault.AppRoleConfig{
			RoleIDFile: filepath.Join(out, "role_id"), SecretIDFile: filepath.Join(out, "secret_id.wrapped"), SecretIDWrapped: true}})
		if err != nil {
			t.Fatalf("run %d: AppRole login with the bootstrap files: %v", run, err)
		}
		store := &memStore{}
		if _, err := vault.Load(ctx, kek, store); err != nil {
			t.Fatalf("run %d: Load: %v", run, err)
		}
		checkAuditSigning(t, kek)
		kek.Close()
	}
	audit, err := root.Logical().Read("transit/keys/tokenproxy-audit")
	if err != nil || audit == nil || audit.Data["type"] != "ed25519" {
		t.Fatalf("audit key after bootstrap: %v %v; want an ed25519 key", audit, err)
	}

	// An audit key of another type is reported, not silently kept.
	if _, err := root.Logical().Write("transit/keys/tokenproxy-audit/config", map[string]any{"deletion_allowed": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Delete("transit/keys/tokenproxy-audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("transit/keys/tokenproxy-audit", nil); err != nil {
		t.Fatal(err)
	}
	_, err = runBootstrap(srv, filepath.Join(t.TempDir(), "approle"))
	if want := "tokenproxy-audit is of type aes256-gcm96; want ed25519"; err == nil || !strings.Contains(errText(err), want) {
		t.Errorf("bootstrap with an aes256 audit key: %v %q; want a failure saying %q", err, errText(err), want)
	}
}

// runBootstrap runs the script with srv's root token as the admin token.
func runBootstrap(srv *vaulttest.Server, out string) ([]byte, error) {
	cmd := exec.Command("bash", "../../deploy/vault/bootstrap-approle.sh", out)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.RootToken)
	return cmd.Output()
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// memStore keeps wrapped keys in memory, standing in for the map.
type memStore struct{ keys []vault.WrappedKey }

func (s *memStore) WrappedKeys(context.Context) ([]vault.WrappedKey, error) { return s.keys, nil }
func (s *memStore) PutWrappedKeys(_ context.Context, k []vault.WrappedKey) error {
	s.keys = append(s.keys, k...)
	return nil
}
