package deploy

import (
	"os/exec"
	"testing"
)

// TestPackagingModule runs the tests of deploy/package, a module of its own
// (nfpm and HCL stay out of the proxy's go.mod), which `go test ./...` at
// the repository root does not enter: the Vault Agent configuration and the
// Vault policy parsed with HCL 1 (Vault's parser) and HCL 2, and the
// packaging program's own checks.
func TestPackagingModule(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	out := mustRun(t, repoFile(t, "deploy/package"), nil, gobin, "test", "-count=1", "./...")
	t.Log(out)
	out = mustRun(t, repoFile(t, "deploy/package"), nil, gobin, "vet", "./...")
	if out != "" {
		t.Errorf("go vet in deploy/package: %s", out)
	}
}
