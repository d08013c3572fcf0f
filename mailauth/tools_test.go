package mailauth

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

// The independent DKIM implementations: Debian's Mail::DKIM (Perl) and
// dkimpy (Python), run with Debian's own interpreters so that a pyenv or
// virtualenv python3 earlier in PATH does not hide Debian's modules.
const (
	perl    = "/usr/bin/perl"
	python3 = "/usr/bin/python3"
)

// requireTools makes sure Mail::DKIM and dkimpy are installed, running
// testdata/install-tools.sh through test/tools (once per test binary,
// under the lock every test binary's installs share). It fails the test,
// never skips it, when they cannot be installed.
func requireTools(t *testing.T) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "install-tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tools.RunScript(script); err != nil {
		t.Fatalf("testdata/install-tools.sh (installs Mail::DKIM and dkimpy from Debian; needs root or password-less sudo) failed: %v\n%s", err, out)
	}
}

// runTool runs an interpreter on a testdata script with stdin, returning
// stdout; err is set on a non-zero exit, with stderr in it.
func runTool(t *testing.T, stdin []byte, interpreter, script string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", interpreter, script, err, &stdout, &stderr)
	}
	return stdout.String(), nil
}
