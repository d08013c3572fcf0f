package tools

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
)

// Chromium returns the path of Debian's headless-capable chromium,
// running install-chromium.sh beside this file once (under the install
// lock) when it is missing. It fails the test (never skips) when it
// cannot.
func Chromium(t testing.TB) string {
	t.Helper()
	if p, ok := lookup("chromium"); ok {
		return p
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal(errors.New("tools: cannot locate test/tools (runtime.Caller)"))
	}
	out, err := RunScript(filepath.Join(filepath.Dir(file), "install-chromium.sh"))
	if err != nil {
		t.Fatalf("tools: chromium is missing and test/tools/install-chromium.sh failed: %v\n%s", err, out)
	}
	if p, ok := lookup("chromium"); ok {
		return p
	}
	t.Fatalf("tools: chromium not found after test/tools/install-chromium.sh:\n%s", out)
	return ""
}
