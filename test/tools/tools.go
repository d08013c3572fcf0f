// Package tools finds the programs that tests and benchmarks drive
// (swaks, Postfix's smtp-sink and smtp-source, postfix, postconf, and
// Prometheus's promtool) and
// installs them with install.sh beside this file when they are missing, so a
// newcomer only runs `go test ./...`.
//
// The install needs root or password-less sudo and Debian's apt. It runs at
// most once per test binary, and under a file lock shared by all test
// binaries (go test runs packages in parallel; apt must not run twice at once).
package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// known maps each tool to the Debian package that ships it (for messages;
// install.sh decides what to install).
var known = map[string]string{
	"swaks":       "swaks",
	"smtp-sink":   "postfix",
	"smtp-source": "postfix",
	"postfix":     "postfix",
	"postconf":    "postfix",
	"promtool":    "prometheus",
}

// sbin is searched after PATH: a non-root PATH often lacks it, and Postfix's
// programs live there.
const sbin = "/usr/sbin"

// installTimeout bounds one run of install.sh (apt download and unpack, and
// the wait for another apt holding the dpkg lock).
const installTimeout = 10 * time.Minute

// scriptRun is the outcome of one install script run.
type scriptRun struct {
	out string
	err error
}

var (
	runsMu sync.Mutex
	runs   = map[string]scriptRun{} // by script and arguments
)

// Path returns the absolute path of a test tool ("swaks", "smtp-sink",
// "smtp-source", "postfix", "postconf", "promtool"), running install.sh once (under a
// file lock in os.UserCacheDir()/tokenproxy so parallel test binaries don't
// run apt concurrently) when it is missing. It fails the test (t.Fatal, never
// t.Skip) with the script's output when it cannot.
func Path(t testing.TB, name string) string {
	t.Helper()
	pkg, ok := known[name]
	if !ok {
		t.Fatalf("tools: unknown tool %q (known: swaks, smtp-sink, smtp-source, postfix, postconf, promtool)", name)
	}
	// swaks is checked with its TLS modules: without Net::SSLeay its
	// --tls fails at run time, not at lookup.
	if p, ok := lookup(name); ok && (name != "swaks" || swaksTLS()) {
		return p
	}
	out, err := install()
	if err != nil {
		t.Fatalf("tools: %s (Debian package %s) is missing and test/tools/install.sh failed: %v\n%s", name, pkg, err, out)
	}
	if p, ok := lookup(name); ok {
		return p
	}
	t.Fatalf("tools: %s not found in PATH or %s after test/tools/install.sh:\n%s", name, sbin, out)
	return ""
}

// lookup finds name in PATH, then in /usr/sbin.
func lookup(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, true
		}
	}
	p := filepath.Join(sbin, name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p, true
	}
	return "", false
}

// install runs install.sh beside this file.
func install() (string, error) {
	script, err := scriptPath()
	if err != nil {
		return "", err
	}
	return RunScript(script)
}

// RunScript runs an idempotent install script (bash, with args) at most
// once per test binary for the same script and arguments, under the file
// lock every test binary takes (go test runs packages in parallel; two apt
// runs, or two policy-rc.d swaps, must not overlap), and returns its
// output. Later calls get the first result: the script is idempotent, so a
// binary that waited for another one's install finds everything there.
// test/deploy and mailauth run their own scripts through it.
func RunScript(script string, args ...string) (string, error) {
	key := strings.Join(append([]string{script}, args...), "\x00")
	runsMu.Lock()
	defer runsMu.Unlock()
	r, done := runs[key]
	if !done {
		r.out, r.err = runLocked(script, args)
		runs[key] = r
	}
	return r.out, r.err
}

// runLocked takes the cross-process lock and runs the script.
func runLocked(script string, args []string) (string, error) {
	unlock, err := lockCache()
	if err != nil {
		return "", err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	// No stdin: sudo must fail rather than wait for a password nobody types.
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %v: %w", script, installTimeout, err)
	}
	return out.String(), err
}

// scriptPath locates install.sh beside this source file, so it is found from
// any package's tests whatever the working directory.
func scriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate test/tools source directory (runtime.Caller)")
	}
	p := filepath.Join(filepath.Dir(file), "install.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("install script: %w", err)
	}
	return p, nil
}

// lockCache takes an exclusive flock on <user cache>/tokenproxy/tools-install.lock.
func lockCache() (unlock func(), err error) {
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

// swaksTLS reports whether Perl has the modules swaks needs for STARTTLS.
func swaksTLS() bool {
	return exec.Command("perl", "-MNet::SSLeay", "-MIO::Socket::SSL", "-e", "1").Run() == nil
}
