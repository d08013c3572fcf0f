package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debEntry is one line of `dpkg-deb -c`: what dpkg will create.
type debEntry struct {
	perm  string // ls-style, e.g. -rw-r-----
	owner string // user/group as recorded (names)
}

// debContents lists the package's data archive, keyed by path ("./etc/...").
func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	out := mustRun(t, "", nil, tool(t, "dpkg-deb"), "-c", deb)
	entries := map[string]debEntry{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", l)
		}
		entries[f[5]] = debEntry{perm: f[0], owner: f[1]}
	}
	return entries
}

// TestDebContents builds the package with `make deb` and checks its file
// list with the modes and owners dpkg will apply, its control files, and
// that the installed files are the repository's.
func TestDebContents(t *testing.T) {
	deb, _ := builtDeb(t)
	dpkgDeb := tool(t, "dpkg-deb")

	fields := mustRun(t, "", nil, dpkgDeb, "-f", deb, "Package", "Version", "Section", "Depends")
	// procps ships /bin/kill, the unit's ExecReload=.
	for _, want := range []string{"Package: tokenproxy", "Version: " + debVersion, "Section: mail", "Depends: procps"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}

	want := map[string]debEntry{
		"./usr/bin/tokenproxy":                                                     {"-rwxr-xr-x", "root/root"},
		"./usr/sbin/tokenproxy-admin":                                              {"-rwxr-xr-x", "root/root"},
		"./lib/systemd/system/tokenproxy.service":                                  {"-rw-r--r--", "root/root"},
		"./etc/tokenproxy/":                                                        {"drwxr-x---", "root/tokenproxy"},
		"./etc/tokenproxy/tokenproxy.yaml":                                         {"-rw-r-----", "root/tokenproxy"},
		"./etc/tokenproxy/credentials/":                                            {"drwx------", "root/root"},
		"./var/lib/tokenproxy/":                                                    {"drwx------", "tokenproxy/tokenproxy"},
		"./var/log/tokenproxy/":                                                    {"drwx------", "tokenproxy/tokenproxy"},
		"./usr/share/doc/tokenproxy/README.md":                                     {"-rw-r--r--", "root/root"},
		"./usr/share/doc/tokenproxy/copyright":                                     {"-rw-r--r--", "root/root"},
		"./usr/share/doc/tokenproxy/examples/monitoring/tokenproxy-alerts.yml":     {"-rw-r--r--", "root/root"},
		"./usr/share/doc/tokenproxy/examples/monitoring/tokenproxy-dashboard.json": {"-rw-r--r--", "root/root"},
		"./usr/share/doc/tokenproxy/examples/monitoring/tests/keys.test.yml":       {"-rw-r--r--", "root/root"},
		"./usr/lib/tokenproxy/etcd-maintain.sh":                                    {"-rwxr-xr-x", "root/root"},
	}
	got := debContents(t, deb)
	for path, w := range want {
		if g, ok := got[path]; !ok {
			t.Errorf("%s missing from the package", path)
		} else if g != w {
			t.Errorf("%s: %s %s, want %s %s", path, g.perm, g.owner, w.perm, w.owner)
		}
	}
	for path, g := range got {
		if _, ok := want[path]; ok {
			continue
		}
		switch {
		case strings.HasSuffix(path, "/") && g.perm == "drwxr-xr-x" && g.owner == "root/root":
			// A parent directory.
		case strings.HasPrefix(path, "./usr/share/doc/tokenproxy/") && g.owner == "root/root" &&
			(g.perm == "-rw-r--r--" || g.perm == "-rwxr-xr-x"):
		default:
			t.Errorf("unexpected entry %s %s %s", g.perm, g.owner, path)
		}
	}

	ctl := filepath.Join(t.TempDir(), "control")
	mustRun(t, "", nil, dpkgDeb, "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/tokenproxy/tokenproxy.yaml\n" {
		t.Errorf("conffiles = %q, want the configuration only (kept on upgrade)", b)
	}
	for script, src := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		sameFile(t, filepath.Join(ctl, script), repoFile(t, "deploy/package/scripts/"+src))
		if fi, err := os.Stat(filepath.Join(ctl, script)); err == nil && fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v, want 0755", script, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
		t.Error("unexpected preinst")
	}

	data := filepath.Join(t.TempDir(), "data")
	mustRun(t, "", nil, dpkgDeb, "-x", deb, data)
	sameFile(t, filepath.Join(data, "etc/tokenproxy/tokenproxy.yaml"), repoFile(t, "deploy/package/tokenproxy.yaml"))
	sameFile(t, filepath.Join(data, "lib/systemd/system/tokenproxy.service"), repoFile(t, "deploy/systemd/tokenproxy.service"))
	sameFile(t, filepath.Join(data, "usr/share/doc/tokenproxy/README.md"), repoFile(t, "deploy/README.md"))
	monitoring, _ := filepath.Glob(repoFile(t, "deploy/monitoring/tests/*.test.yml"))
	for _, f := range append(monitoring, repoFile(t, "deploy/monitoring/tokenproxy-alerts.yml"), repoFile(t, "deploy/monitoring/tokenproxy-dashboard.json")) {
		rel, _ := filepath.Rel(repoFile(t, "deploy/monitoring"), f)
		sameFile(t, filepath.Join(data, "usr/share/doc/tokenproxy/examples/monitoring", rel), f)
	}
	sameFile(t, filepath.Join(data, "usr/sbin/tokenproxy-admin"), repoFile(t, "deploy/systemd/tokenproxy-admin"))
	checkStatic(t, filepath.Join(data, "usr/bin/tokenproxy"))
}

func sameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Error(err)
		return
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// checkStatic: CGO_ENABLED=0 gives a binary without a dynamic loader, which
// runs on any Debian release.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (PT_INTERP); make build sets CGO_ENABLED=0", path)
		}
	}
}

// TestPackagedConfigChecks runs the packaged binary's check-config on the
// packaged configuration: the placeholders must pass the loader.
func TestPackagedConfigChecks(t *testing.T) {
	deb, _ := builtDeb(t)
	data := t.TempDir()
	mustRun(t, "", nil, tool(t, "dpkg-deb"), "-x", deb, data)
	out := mustRun(t, data, nil, filepath.Join(data, "usr/bin/tokenproxy"),
		"--config", filepath.Join(data, "etc/tokenproxy/tokenproxy.yaml"), "check-config")
	for _, want := range []string{
		"data_dir: /var/lib/tokenproxy", "provider: vault", "method: approle", "format: json",
		"listen: 0.0.0.0:25", "listen: 0.0.0.0:587", "listen: 127.0.0.1:8025",
		"secret_id_file: /run/credentials/tokenproxy.service/secret_id",
		"key_file: /run/credentials/tokenproxy.service/inbound.key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
}

// TestDebReproducible builds the package a second time from the same
// commit and expects the same bytes (SOURCE_DATE_EPOCH, -trimpath).
func TestDebReproducible(t *testing.T) {
	deb, _ := builtDeb(t)
	dist2 := filepath.Join(buildDir, "dist2")
	mustRun(t, repoRoot(t), nil, tool(t, "make"), "deb", "DIST="+dist2, "VERSION="+debVersion)
	sameFile(t, filepath.Join(dist2, filepath.Base(deb)), deb)
}
