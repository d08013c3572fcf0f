package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// proxyBinary builds cmd/proxy once per test run: these tests drive the
// real binary, as an operator would.
// readSources opens every Go file and the embedded configuration of the
// module outside test/: go test caches a package's result keyed by the
// files its tests open, and the binary is built in a subprocess, so
// without this a change in smtp/ or cmd/proxy would replay a cached pass.
func readSources() {
	filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "test" || d.Name() == ".git" || d.Name() == "data") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".yaml") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			if f, err := os.Open(path); err == nil {
				f.Close()
			}
		}
		return nil
	})
}

func proxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		readSources()
		dir, err := os.MkdirTemp("", "tokenproxy-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "proxy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/proxy")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build proxy: %v\n%s", buildErr, binPath)
	}
	return binPath
}

type binRun struct {
	code        int
	stdout, log string
}

func runProxy(t *testing.T, config string, args ...string) binRun {
	t.Helper()
	return runProxyInput(t, config, nil, args...)
}

// runProxyInput runs `proxy --config config args...` with stdin (none
// when nil) and returns its exit code, stdout and stderr (the log).
func runProxyInput(t *testing.T, config string, stdin []byte, args ...string) binRun {
	t.Helper()
	cmd := exec.Command(proxyBinary(t), append([]string{"--config", config}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")} // no VAULT_* leaks in
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return binRun{code, out.String(), errb.String()}
}

func writeVaultConfig(t *testing.T, srv *vaulttest.Server, key string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "vault-token")
	os.WriteFile(tokenFile, []byte(srv.RootToken+"\n"), 0o600)
	config := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(config, []byte(`data_dir: `+filepath.Join(dir, "data")+`
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
log: {format: json}
keys:
  provider: vault
  vault:
    address: "`+srv.Addr+`"
    key: `+key+`
    auth: {method: token, token_file: `+tokenFile+`}
`), 0o600)
	return config
}

func TestBinaryWithVault(t *testing.T) {
	config := writeVaultConfig(t, shared, createTransitKey(t, shared, "binary"))
	const addr = "Binary.Customer@example.net"

	r := runProxy(t, config, "token", "new", "--name", "Bin Customer", addr)
	if r.code != 0 || !strings.HasSuffix(strings.TrimSpace(r.stdout), "@relay.company.example") {
		t.Fatalf("token new: %+v", r)
	}
	tok := strings.TrimSpace(r.stdout)
	r = runProxy(t, config, "keys", "rotate", "--record-key")
	if r.code != 0 || !strings.Contains(r.stdout, "rotated to v2") || !strings.Contains(r.stdout, "every record is sealed under the newest record key") {
		t.Fatalf("keys rotate: %+v", r)
	}
	r = runProxy(t, config, "token", "resolve", "--reason", "integration test", tok)
	if r.code != 0 || !strings.Contains(r.stdout, addr) || !strings.Contains(r.stdout, "Bin Customer") {
		t.Fatalf("token resolve after rotation: %+v", r)
	}
	r = runProxy(t, config, "keys", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "vault-transit") || !strings.Contains(r.stdout, "record key:        current v2") {
		t.Fatalf("keys status: %+v", r)
	}
	if strings.Contains(strings.ToLower(r.log), "binary.customer") {
		t.Fatalf("log carries the address: %s", r.log)
	}
}

func TestBinaryRefusesWithoutVault(t *testing.T) {
	srv := vaulttest.Start(t)
	config := writeVaultConfig(t, srv, "gone")
	srv.Kill()
	r := runProxy(t, config, "demo")
	if r.code != 1 || !strings.Contains(r.log, srv.Addr) || !strings.Contains(r.log, "connection refused") {
		t.Fatalf("demo without Vault: %+v", r)
	}
}
