package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNftRuleset checks deploy/firewall/tokenproxy.nft with `nft -c -f`
// (check mode: parsed, evaluated and validated by the kernel, never
// committed), then loads it for real, twice (the file must be re-loadable),
// in a private network namespace, and checks the policy in the listing. The
// host's ruleset is never touched.
func TestNftRuleset(t *testing.T) {
	nft := tool(t, "nft")
	file := repoFile(t, "deploy/firewall/tokenproxy.nft")

	// Check mode talks netlink; inside a fresh network namespace it needs
	// root or a user namespace (-r), so try both before giving up.
	var checked bool
	for _, attempt := range [][]string{
		{"unshare", "-n", nft, "-c", "-f", file},
		{"unshare", "-r", "-n", nft, "-c", "-f", file},
		{nft, "-c", "-f", file},
	} {
		r := run("", nil, attempt[0], attempt[1:]...)
		if r.err == nil {
			t.Logf("checked with: %s", strings.Join(attempt, " "))
			checked = true
			break
		}
		t.Logf("%s: %v\n%s", strings.Join(attempt, " "), r.err, r.out)
		if strings.Contains(r.out, "Error:") && !strings.Contains(r.out, "Operation not permitted") {
			t.Fatalf("nft rejects %s:\n%s", file, r.out)
		}
	}
	if !checked {
		t.Fatal("nft -c could not run here (no permission for netlink, even in a user namespace)")
	}

	script := `set -e; nft -f "$1"; nft -f "$1"; nft list ruleset`
	listing := ""
	for _, prefix := range [][]string{{"unshare", "-n"}, {"unshare", "-r", "-n"}} {
		args := append(append([]string{}, prefix[1:]...), "sh", "-c", script, "sh", file)
		r := run("", []string{"PATH=" + filepath.Dir(nft) + ":" + os.Getenv("PATH")}, prefix[0], args...)
		if r.err == nil {
			listing = r.out
			t.Logf("loaded twice with: %s nft -f", strings.Join(prefix, " "))
			break
		}
		t.Logf("%s: load: %v\n%s", strings.Join(prefix, " "), r.err, r.out)
	}
	if listing == "" {
		t.Fatal("could not load the ruleset in a private network namespace")
	}
	if n := strings.Count(listing, "table inet tokenproxy {"); n != 1 {
		t.Errorf("after two loads: %d tables inet tokenproxy, want 1 (the file must replace its table)", n)
	}
	for _, want := range []string{
		"type filter hook input priority filter; policy drop;",
		"type filter hook output priority filter; policy drop;",
		"type filter hook forward priority filter; policy drop;",
		"ct state established,related accept",
		`iif "lo" accept`,
		"tcp dport { 25, 587 } accept",
		"ip saddr @mgmt_v4 tcp dport { 22, 8025 } accept",
		"ip6 saddr @mgmt_v6 tcp dport { 22, 8025 } accept",
		"ip daddr @vault_v4 tcp dport 8200 accept",
		"ip daddr @downstream_v4 tcp dport { 25, 587 } accept",
		"ip daddr @resolvers_v4 meta l4proto { tcp, udp } th dport 53 accept",
		"ip saddr @etcd_peers_v4 tcp dport { 2379, 2380 } accept",
		"ip6 saddr @etcd_peers_v6 tcp dport { 2379, 2380 } accept",
		"ip daddr @etcd_peers_v4 tcp dport { 2379, 2380 } accept",
		"ip6 daddr @etcd_peers_v6 tcp dport { 2379, 2380 } accept",
		"ip saddr @etcd_peers_v4 tcp dport 8025 accept",
		"ip6 saddr @etcd_peers_v6 tcp dport 8025 accept",
		"ip daddr @etcd_peers_v4 tcp dport 8025 accept",
		"ip6 daddr @etcd_peers_v6 tcp dport 8025 accept",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("ruleset lacks %q; listing:\n%s", want, listing)
		}
	}
	// The admin port and etcd's must not be open to everyone.
	if regexp.MustCompile(`(?m)^\s*tcp dport [^\n]*(2379|2380)[^\n]* accept$`).MatchString(listing) {
		t.Errorf("an etcd port accepted without a source restriction:\n%s", listing)
	}
	if regexp.MustCompile(`(?m)^\s*tcp dport [^\n]*8025[^\n]* accept$`).MatchString(listing) {
		t.Errorf("port 8025 accepted without a source restriction:\n%s", listing)
	}
}

var (
	sysctlKeyRE   = regexp.MustCompile(`^-?[a-z0-9_]+(\.[a-z0-9_-]+)+$`)
	sysctlValueRE = regexp.MustCompile(`^[0-9]+$`)
)

// TestSysctlConf parses deploy/firewall/99-tokenproxy-sysctl.conf as
// systemd-sysctl does: "key = value" lines, "-key" tolerating a kernel
// without it. Every key without "-" must exist under /proc/sys here.
func TestSysctlConf(t *testing.T) {
	path := repoFile(t, "deploy/firewall/99-tokenproxy-sysctl.conf")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !sysctlKeyRE.MatchString(k) || !sysctlValueRE.MatchString(v) {
			t.Errorf("line %d: want \"key = number\", got %q", n, l)
			continue
		}
		optional := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		if _, dup := seen[k]; dup {
			t.Errorf("line %d: %s set twice", n, k)
		}
		seen[k] = v
		proc := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		fi, err := os.Stat(proc)
		switch {
		case err == nil && fi.Mode().IsRegular():
		case err == nil:
			t.Errorf("line %d: %s is not a setting (%s is a directory)", n, k, proc)
		case optional:
			t.Logf("line %d: %s absent on this kernel (optional, \"-\")", n, k)
		default:
			t.Errorf("line %d: %s: %v (a typo? prefix it with \"-\" if it depends on a kernel option)", n, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"net.ipv4.conf.all.rp_filter":           "1",
		"net.ipv4.tcp_syncookies":               "1",
		"net.ipv4.conf.all.accept_redirects":    "0",
		"net.ipv6.conf.all.accept_redirects":    "0",
		"net.ipv4.conf.all.send_redirects":      "0",
		"net.ipv4.conf.all.accept_source_route": "0",
		"net.ipv6.conf.all.accept_source_route": "0",
		"kernel.kptr_restrict":                  "2",
		"kernel.dmesg_restrict":                 "1",
		"kernel.unprivileged_bpf_disabled":      "1",
		"kernel.yama.ptrace_scope":              "2",
		"fs.protected_symlinks":                 "1",
		"fs.protected_hardlinks":                "1",
		"fs.protected_fifos":                    "2",
		"fs.protected_regular":                  "2",
		"fs.suid_dumpable":                      "0",
	} {
		if seen[k] != v {
			t.Errorf("%s = %q, want %s", k, seen[k], v)
		}
	}
}
