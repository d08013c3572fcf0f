package fuzz

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// perTarget bounds each target's run: 8 targets take about 50 s on 2 cores
// with a warm build cache (the first, instrumented build adds a minute).
const perTarget = "4s"

// TestFuzzTargetsBounded runs test/fuzz.sh with FUZZ_FRESH=1, so every
// target fuzzes from its committed seed corpus for perTarget, and fails on
// any finding (the script prints the failing input's file).
func TestFuzzTargetsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzing skipped in -short mode")
	}
	root := moduleRoot(t)
	checkTargetList(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "test", "fuzz.sh"), perTarget)
	cmd.Env = append(os.Environ(), "FUZZ_FRESH=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("test/fuzz.sh %s (%s):\n%s", perTarget, time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("test/fuzz.sh: %v", err)
	}
}

var (
	fuzzFunc   = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	scriptLine = regexp.MustCompile(`(?m)^\s+"(\./[\w/]+) (Fuzz\w+)"$`)
)

// checkTargetList compares the script's list with the Fuzz functions of
// the module's packages, so a new target is not left out. Reading every Go
// file and seed of the module also makes go test's result cache depend on
// them: a change to a fuzzed package runs this test again.
func checkTargetList(t *testing.T, root string) {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || exists(filepath.Join(path, "go.mod"))) {
				return filepath.SkipDir // another module (test/vaultdev, deploy/package)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.Contains(path, "/testdata/fuzz/") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			found = append(found, "./"+filepath.ToSlash(rel)+" "+string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "test", "fuzz.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range scriptLine.FindAllSubmatch(script, -1) {
		listed = append(listed, string(m[1])+" "+string(m[2]))
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Fatalf("test/fuzz.sh lists\n  %s\nbut the module's fuzz targets are\n  %s", strings.Join(listed, "\n  "), strings.Join(found, "\n  "))
	}
	for _, target := range found {
		pkg, name, _ := strings.Cut(target, " ")
		seeds, _ := filepath.Glob(filepath.Join(root, pkg, "testdata", "fuzz", name, "*"))
		if len(seeds) == 0 {
			t.Errorf("%s has no committed seed corpus in %s/testdata/fuzz/%s", name, pkg, name)
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// moduleRoot is two levels up from this package's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(wd))
	if !exists(filepath.Join(root, "go.mod")) {
		t.Fatalf("no go.mod in %s", root)
	}
	return root
}
