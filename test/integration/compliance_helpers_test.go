package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// complianceConfig returns a compliance: section that turns the API on
// for principals, each "name:role" with the bearer token "<name>-token"
// (only its SHA-256 is in the file), followed by extra lines (indented
// under compliance: by the caller).
func complianceConfig(extra string, principals ...string) string {
	var b strings.Builder
	b.WriteString("compliance:\n  enabled: true\n  principals:\n")
	for _, p := range principals {
		name, role, _ := strings.Cut(p, ":")
		h := sha256.Sum256([]byte(name + "-token"))
		fmt.Fprintf(&b, "    - {name: %s, roles: [%s], token_sha256: %s}\n", name, role, hex.EncodeToString(h[:]))
	}
	b.WriteString(extra)
	return b.String()
}

// proxyCLI runs `proxy --config config args...` as a principal whose
// bearer token is token (TOKENPROXY_TOKEN, the variable the compliance
// commands read) and returns its exit code and output.
func proxyCLI(t *testing.T, config, token string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(proxyBinary(t), append([]string{"--config", config}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TOKENPROXY_TOKEN=" + token}
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), b.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, b.String()
}
