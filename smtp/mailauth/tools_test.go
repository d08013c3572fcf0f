package mailauth

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The independent DKIM implementations: Debian's Mail::DKIM (Perl) and
// dkimpy (Python), run with Debian's own interpreters so that a pyenv or
// virtualenv python3 earlier in PATH does not hide Debian's modules.
const (
	perl    = "/usr/bin/perl"
	python3 = "/usr/bin/python3"
)

// installTimeout bounds testdata/install-tools.sh (apt download and unpack,
// and waiting for another apt holding the dpkg lock).
const installTimeout = 10 * time.Minute

var (
	toolsOnce sync.Once
	toolsOut  []byte
	toolsErr  error
)

// requireTools makes sure Mail::DKIM and dkimpy are installed, running
// testdata/install-tools.sh once per test binary. It fails the test, never
// skips it, when they cannot be installed.
func requireTools(t *testing.T) {
	t.Helper()
	toolsOnce.Do(func() { toolsOut, toolsErr = runInstallTools() })
	if toolsErr != nil {
		t.Fatalf("testdata/install-tools.sh (installs Mail::DKIM and dkimpy from Debian; needs root or password-less sudo) failed: %v\n%s", toolsErr, toolsOut)
	}
}

// runInstallTools runs the idempotent script under the file lock that
// test/tools also takes, so that no two test binaries run apt at once.
func runInstallTools() ([]byte, error) {
	unlock, err := lockToolsInstall()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("testdata", "install-tools.sh"))
	cmd.Stdin = nil // sudo must fail rather than wait for a password
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("not done within %v: %w", installTimeout, err)
	}
	return out, err
}

// lockToolsInstall takes an exclusive flock on
// <user cache>/tokenproxy/tools-install.lock.
func lockToolsInstall() (unlock func(), err error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "tokenproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "tools-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the lock
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
