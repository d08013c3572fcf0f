// Command package builds tokenproxy's Debian package from nfpm.yaml with
// nfpm's Go library (github.com/goreleaser/nfpm/v2), so building a .deb
// needs Go and nothing else. It lives in its own module to keep nfpm's
// dependencies out of the proxy's.
//
//	cd deploy/package && go run . -root ../.. -version 1.2.3
//
// `make deb` at the repository root builds the binary and runs this.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
)

// options are the command-line flags.
type options struct {
	config  string // nfpm.yaml
	root    string // repository root: nfpm.yaml's relative sources start there
	binary  string // the proxy binary, relative to root or absolute
	version string
	arch    string // Debian/Go architecture name (amd64, arm64)
	out     string // output directory
}

func main() {
	var o options
	flag.StringVar(&o.config, "config", "deploy/package/nfpm.yaml", "nfpm configuration, relative to -root or absolute")
	flag.StringVar(&o.root, "root", ".", "repository root: relative paths in the configuration start there")
	flag.StringVar(&o.binary, "binary", "dist/tokenproxy", "the tokenproxy binary to package")
	flag.StringVar(&o.version, "version", "0.0.0~dev", "package version (Debian syntax, starts with a digit)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture of the binary (Go names: amd64, arm64)")
	flag.StringVar(&o.out, "out", "dist", "output directory, relative to -root or absolute")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "package: no arguments expected; see -help")
		os.Exit(2)
	}
	path, err := build(o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// build writes the package and returns its path. It changes the working
// directory to the root: nfpm resolves the configuration's sources against
// the working directory.
func build(o options, log io.Writer) (string, error) {
	if o.version == "" || o.version[0] < '0' || o.version[0] > '9' {
		return "", fmt.Errorf("-version %q: a Debian version starts with a digit", o.version)
	}
	if err := os.Chdir(o.root); err != nil {
		return "", fmt.Errorf("-root: %w", err)
	}
	if _, err := os.Stat(o.binary); err != nil {
		return "", fmt.Errorf("-binary: %w (build it first: make deb)", err)
	}
	vars := map[string]string{"VERSION": o.version, "ARCH": o.arch, "BINARY": o.binary}
	mapping, unknown := strictMapping(vars)
	cfg, err := nfpm.ParseFileWithEnvMapping(o.config, mapping)
	if err != nil {
		return "", fmt.Errorf("%s: %w", o.config, err)
	}
	if names := unknown(); len(names) > 0 {
		return "", fmt.Errorf("%s: unknown variables %s (known: VERSION, ARCH, BINARY)", o.config, strings.Join(names, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("%s: %w", o.config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	target := filepath.Join(o.out, packager.ConventionalFileName(info))
	info.Target = target
	if err := write(target, func(w io.Writer) error { return packager.Package(info, w) }); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "package: %s %s (%s)\n", info.Name, info.Version, info.Arch)
	return filepath.Abs(target)
}

// strictMapping expands ${NAME} in the configuration from vars only, so a
// stray variable of the build machine's environment never ends up in the
// package. NFPM_* (signing passphrases, which nfpm always looks up) expand
// to empty; anything else is collected and reported by unknown.
func strictMapping(vars map[string]string) (mapping func(string) string, unknown func() []string) {
	seen := map[string]bool{}
	mapping = func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		if !strings.HasPrefix(name, "NFPM_") {
			seen[name] = true
		}
		return ""
	}
	unknown = func() []string {
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		sort.Strings(names)
		return names
	}
	return mapping, unknown
}

// write creates path through a temporary file renamed into place, so a
// failed build never leaves a truncated package behind.
func write(path string, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".package-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
