package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` rating accepted
// for our units (0 = fully locked down, 10 = unprotected; 1.5 is deep in
// the "OK" band).
const maxExposure = 1.5

var (
	exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)
	versionRE  = regexp.MustCompile(`^systemd ([0-9]+)`)
)

// systemdAnalyze returns systemd-analyze, checking that it knows
// --offline (systemd 252, Debian bookworm, or later).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	sa := tool(t, "systemd-analyze")
	out := mustRun(t, "", nil, sa, "--version")
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze --version: unexpected output %q", out)
	}
	if v, _ := strconv.Atoi(m[1]); v < 252 {
		t.Fatalf("systemd-analyze is systemd %d; security --offline needs 252 or later", v)
	}
	return sa
}

func TestUnitExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, unit := range []string{"deploy/systemd/tokenproxy.service", "deploy/vault/tokenproxy-vault-agent.service"} {
		t.Run(filepath.Base(unit), func(t *testing.T) {
			r := run(repoRoot(t), nil, sa, "security", "--offline=true", "--no-pager", unit)
			m := exposureRE.FindStringSubmatch(r.out)
			if m == nil {
				t.Fatalf("systemd-analyze security %s: no exposure level (%v):\n%s", unit, r.err, r.out)
			}
			level, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: overall exposure level %.1f (at most %.1f accepted)", unit, level, maxExposure)
			if level > maxExposure {
				t.Errorf("%s: exposure %.1f > %.1f; the findings:\n%s", unit, level, maxExposure, findings(r.out))
			}
		})
	}
}

// findings keeps the failed checks (✗) of systemd-analyze security.
func findings(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "✗") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestUnitVerify runs systemd-analyze verify in a throwaway root holding
// the distribution's units, our units and the Vault Agent drop-in, with
// stand-ins for the binaries they run (verify checks that they exist).
// Any message (an unknown key, a bad value) fails the test.
func TestUnitVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	root := t.TempDir()
	sysUnits := "/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(sysUnits, "sysinit.target")); err != nil {
		t.Fatalf("%s/sysinit.target missing (package systemd): %v", sysUnits, err)
	}
	mustRun(t, "", nil, "mkdir", "-p", root+"/lib/systemd", root+"/etc/systemd/system/tokenproxy.service.d", root+"/usr/bin", root+"/bin")
	mustRun(t, "", nil, "cp", "-a", sysUnits, root+"/lib/systemd/")
	for _, bin := range []string{"/usr/bin/tokenproxy", "/usr/bin/vault", "/bin/kill", "/bin/sh"} {
		if err := os.WriteFile(root+bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, repoFile(t, "deploy/systemd/tokenproxy.service"), root+"/etc/systemd/system/tokenproxy.service")
	copyFile(t, repoFile(t, "deploy/vault/tokenproxy-vault-agent.service"), root+"/etc/systemd/system/tokenproxy-vault-agent.service")
	copyFile(t, repoFile(t, "deploy/vault/tokenproxy-vault-agent.conf"), root+"/etc/systemd/system/tokenproxy.service.d/vault-agent.conf")

	for _, unit := range []string{"tokenproxy.service", "tokenproxy-vault-agent.service"} {
		r := run("", nil, sa, "verify", "--root="+root, "--man=no", "/etc/systemd/system/"+unit)
		if r.err != nil || strings.TrimSpace(r.out) != "" {
			t.Errorf("systemd-analyze verify %s (with the Vault Agent drop-in): %v\n%s", unit, r.err, r.out)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// unitSettings reads a unit file's [Service] section: each key with its
// values in order (an empty assignment resets the list, as systemd does).
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = l
		case section == "[Service]":
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, l)
			}
			if v == "" {
				delete(settings, k)
				continue
			}
			settings[k] = append(settings[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}

// TestUnitSettings pins the settings the deployment depends on, beyond what
// the exposure figure shows: a change here is a decision, not an accident.
func TestUnitSettings(t *testing.T) {
	s := unitSettings(t, repoFile(t, "deploy/systemd/tokenproxy.service"))
	want := map[string]string{
		"Type":                    "simple",
		"User":                    "tokenproxy",
		"Group":                   "tokenproxy",
		"ExecStart":               "/usr/bin/tokenproxy --config /etc/tokenproxy/tokenproxy.yaml serve",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ReadWritePaths":          "/var/lib/tokenproxy /var/log/tokenproxy",
		"StateDirectory":          "tokenproxy",
		"StateDirectoryMode":      "0700",
		"LogsDirectory":           "tokenproxy",
		"LogsDirectoryMode":       "0700",
		"UMask":                   "0077",
		"SystemCallArchitectures": "native",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"ProtectProc":             "invisible",
		"ProcSubset":              "pid",
		"DevicePolicy":            "closed",
		"SystemCallErrorNumber":   "EPERM",
	}
	for _, yes := range []string{"MemoryDenyWriteExecute", "PrivateTmp", "PrivateDevices", "ProtectHome",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
		"ProtectClock", "ProtectHostname", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
		"LockPersonality", "RemoveIPC"} {
		want[yes] = "yes"
	}
	for k, v := range want {
		if got := s[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := s["SystemCallFilter"]; !slices.Equal(got, []string{"@system-service", "~@privileged @resources"}) {
		t.Errorf("SystemCallFilter = %q", got)
	}
	for _, k := range []string{"Environment", "EnvironmentFile", "DynamicUser", "IPAddressAllow", "IPAddressDeny"} {
		if _, ok := s[k]; ok {
			t.Errorf("%s is set; secrets go through LoadCredential=, and IP lists are site-specific (a drop-in)", k)
		}
	}
}

// TestCredentialsMatchConfig checks that the configuration the package
// installs reads exactly the credentials the unit loads, and that each
// comes from /etc/tokenproxy/credentials.
func TestCredentialsMatchConfig(t *testing.T) {
	s := unitSettings(t, repoFile(t, "deploy/systemd/tokenproxy.service"))
	loaded := map[string]bool{}
	for _, v := range s["LoadCredential"] {
		id, path, _ := strings.Cut(v, ":")
		if path != "/etc/tokenproxy/credentials/"+id {
			t.Errorf("LoadCredential=%s: want the file /etc/tokenproxy/credentials/%s", v, id)
		}
		loaded[id] = true
	}
	conf, err := os.ReadFile(repoFile(t, "deploy/package/tokenproxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`/run/credentials/tokenproxy\.service/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(string(conf), -1) {
		used[m[1]] = true
	}
	for id := range used {
		if !loaded[id] {
			t.Errorf("tokenproxy.yaml reads credential %s, which the unit does not load", id)
		}
	}
	for id := range loaded {
		if !used[id] {
			t.Errorf("the unit loads credential %s, which tokenproxy.yaml does not read", id)
		}
	}
	if len(loaded) == 0 {
		t.Error("the unit loads no credentials")
	}
}
