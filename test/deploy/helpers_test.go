package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/tools"
)

// cmdTimeout bounds one external command (a build, an install, a check).
const cmdTimeout = 3 * time.Minute

// repoRoot is the repository's top directory, found from this file.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// repoFile is a path in the repository.
func repoFile(t testing.TB, rel string) string {
	return filepath.Join(repoRoot(t), filepath.FromSlash(rel))
}

// result is what a command printed and how it ended.
type result struct {
	out string // stdout and stderr, interleaved
	err error
}

// run runs a command in dir with a timeout; env entries are added to the
// test's environment.
func run(dir string, env []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", name, cmdTimeout, err)
	}
	return result{out.String(), err}
}

// mustRun runs a command and fails the test when it fails.
func mustRun(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	r := run(dir, env, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), r.err, r.out)
	}
	return r.out
}

// sbinDirs are searched after PATH: a non-root PATH often lacks them, and
// nft lives in /usr/sbin.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

func lookTool(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// tool returns the path of systemd-analyze, nft, make, dpkg-deb or strace, running
// deploy/test-tools.sh (at most once per tool and test binary, under the
// cross-process lock test/tools uses) when it is missing. It fails the test
// when the tool cannot be had.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := lookTool(name); ok {
		return p
	}
	r := installLocked(t, name)
	if r.err != nil {
		t.Fatalf("%s is missing and deploy/test-tools.sh %s failed: %v\n%s", name, name, r.err, r.out)
	}
	p, ok := lookTool(name)
	if !ok {
		t.Fatalf("%s still missing after deploy/test-tools.sh:\n%s", name, r.out)
	}
	return p
}

// installLocked runs deploy/test-tools.sh for one tool through test/tools,
// under the lock every test binary's installs share.
func installLocked(t testing.TB, name string) result {
	t.Logf("%s missing: running deploy/test-tools.sh %s", name, name)
	out, err := tools.RunScript(repoFile(t, "deploy/test-tools.sh"), name)
	return result{out: out, err: err}
}

// needRoot fails a test that needs root (chroot, mount namespaces, nft).
func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("needs root: %s (run the tests as root, as CI does)", why)
	}
}
