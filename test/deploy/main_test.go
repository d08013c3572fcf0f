package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// buildDir holds what `make deb` built, shared by the tests of this binary
// and removed when they end.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenproxy-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// debVersion is the version the test package is built with.
const debVersion = "0.0.0~test1"

var (
	debOnce sync.Once
	debOut  string
	debErr  error
)

// builtDeb runs `make deb` once per test binary (a static binary and the
// package, into a temporary DIST) and returns the package's path and the
// binary's.
func builtDeb(t *testing.T) (deb, binary string) {
	t.Helper()
	mk := tool(t, "make")
	dist := filepath.Join(buildDir, "dist")
	debOnce.Do(func() {
		r := run(repoRoot(t), nil, mk, "deb", "DIST="+dist, "VERSION="+debVersion)
		debOut, debErr = r.out, r.err
	})
	if debErr != nil {
		t.Fatalf("make deb: %v\n%s", debErr, debOut)
	}
	deb = filepath.Join(dist, "tokenproxy_"+debVersion+"_"+runtime.GOARCH+".deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("make deb did not write %s: %v\n%s", deb, err, debOut)
	}
	return deb, filepath.Join(dist, "tokenproxy")
}
