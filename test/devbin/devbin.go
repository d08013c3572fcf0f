// Package devbin builds the binaries of the real servers the tests start
// (test/vaultdev: a Vault dev server; test/etcddev: an etcd member), each a
// nested Go module so that the servers' dependencies stay out of ours. A
// binary is built once per source and kept under the user cache directory
// (~/.cache/tokenproxy/<name>-<hash>); concurrent test processes (go test
// ./... runs packages in parallel) coordinate through a file lock, so only
// one of them builds.
package devbin

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

const mainModule = "github.com/tokenproxy/tokenproxy"

// staleAfter keeps binaries of other sources this long: a recent one may
// belong to another checkout (a git worktree) whose tests are running.
const staleAfter = 24 * time.Hour

// Build returns the cached binary <name>-<hash> of pkg, built in the
// nested module test/<module> (pkg "." for the module itself, or a package
// the module requires, such as a tool it pins), for the module's current
// source, building it first if needed. cold says in the log how long a
// cold build takes.
func Build(logf func(format string, args ...any), module, name, pkg, cold string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "test", module)
	sum, err := sourceHash(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cache = filepath.Join(cache, "tokenproxy")
	bin := filepath.Join(cache, name+"-"+sum)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, module+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close() // releases the lock
	waited := time.Now()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(bin); err == nil { // another process built it meanwhile
		logf("waited %v for another process to build %s", time.Since(waited).Round(time.Second), bin)
		return bin, nil
	}
	if err := goBuild(logf, src, pkg, bin, cold); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	removeStale(cache, name, bin, logf)
	return bin, nil
}

// goBuild builds pkg in src into bin through a temporary file, so that a
// half-written binary is never found.
func goBuild(logf func(format string, args ...any), src, pkg, bin, cold string) error {
	logf("building %s from %s %s (a cold build takes %s)", bin, src, pkg, cold)
	begin := time.Now()
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	logf("built %s in %v", bin, time.Since(begin).Round(time.Second))
	return nil
}

// removeStale deletes binaries of name built from other sources more than
// staleAfter ago. It runs under the build lock; a test still running an
// old binary keeps its open file, as Unix unlink allows.
func removeStale(cache, name, keep string, logf func(format string, args ...any)) {
	old, _ := filepath.Glob(filepath.Join(cache, name+"-*"))
	for _, f := range old {
		fi, err := os.Stat(f)
		if err != nil || f == keep || strings.HasSuffix(f, ".tmp") || time.Since(fi.ModTime()) < staleAfter {
			continue
		}
		if err := os.Remove(f); err == nil {
			logf("removed stale %s", f)
		}
	}
}

// repoRoot walks up from the working directory (the package directory
// under go test) to the main module's root.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isMainModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", mainModule)
		}
		dir = parent
	}
}

func isMainModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == mainModule
		}
	}
	return false
}

// sourceHash identifies a build: the module's go.mod, go.sum and Go files,
// and the target platform. (Not the Go version: a newer Go builds the
// same server, and a Vault build costs minutes.)
func sourceHash(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	names = append(names, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
	slices.Sort(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(name), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
