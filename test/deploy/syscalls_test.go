package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestSyscallFilter checks the unit's SystemCallFilter= against what the
// proxy really calls: no systemd runs here to start the unit, so the
// packaged binary runs `demo` (both SMTP routes over TLS, the token map,
// the rewriter) under strace, and every system call it makes must be in
// @system-service (and @default) and in neither @privileged nor @resources.
// A call outside would get EPERM under the unit (SystemCallErrorNumber=).
// Its sockets must be of the families RestrictAddressFamilies= allows.
func TestSyscallFilter(t *testing.T) {
	sa := systemdAnalyze(t)
	strace := tool(t, "strace")
	_, binary := builtDeb(t)

	groups := syscallGroups(t, mustRun(t, "", nil, sa, "syscall-filter"))
	allowed := map[string]bool{}
	for _, g := range []string{"@system-service", "@default"} {
		for s := range expand(t, groups, g, nil) {
			allowed[s] = true
		}
	}
	for _, g := range []string{"@privileged", "@resources"} {
		for s := range expand(t, groups, g, nil) {
			delete(allowed, s)
		}
	}

	work := t.TempDir()
	trace := filepath.Join(work, "trace")
	out := mustRun(t, work, nil, strace, "-f", "-qq", "-o", trace, binary, "demo")
	if !strings.Contains(out, "the reply reached the customer's real address") {
		t.Fatalf("demo under strace did not complete its round trip:\n%s", out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^[0-9]+ +([a-z0-9_]+)\(`).FindAllStringSubmatch(string(b), -1) {
		used[m[1]] = true
	}
	if len(used) < 20 {
		t.Fatalf("only %d system calls seen in the trace; strace output not understood", len(used))
	}
	var denied []string
	for s := range used {
		if !allowed[s] {
			denied = append(denied, s)
		}
	}
	sort.Strings(denied)
	t.Logf("%d distinct system calls, all checked against the unit's filter", len(used))
	if len(denied) > 0 {
		t.Errorf("the proxy calls %v, which tokenproxy.service's SystemCallFilter= refuses", denied)
	}

	// RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX.
	for _, m := range regexp.MustCompile(`(?m)^[0-9]+ +socket\((AF_[A-Z0-9]+)`).FindAllStringSubmatch(string(b), -1) {
		switch m[1] {
		case "AF_INET", "AF_INET6", "AF_UNIX":
		default:
			t.Errorf("the proxy opens an %s socket, which RestrictAddressFamilies= refuses", m[1])
		}
	}
}

// syscallGroups parses `systemd-analyze syscall-filter`: a group name at
// the start of a line, its members (calls or @groups) indented below,
// comments starting with "#".
func syscallGroups(t *testing.T, out string) map[string][]string {
	t.Helper()
	groups := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case !strings.HasPrefix(l, " ") && strings.HasPrefix(l, "@"):
			cur = trimmed
			groups[cur] = nil
		case cur != "":
			groups[cur] = append(groups[cur], trimmed)
		}
	}
	if len(groups["@system-service"]) == 0 {
		t.Fatalf("systemd-analyze syscall-filter: no @system-service group in:\n%s", out)
	}
	return groups
}

// expand resolves a group into system call names.
func expand(t *testing.T, groups map[string][]string, name string, seen map[string]bool) map[string]bool {
	t.Helper()
	if seen == nil {
		seen = map[string]bool{}
	}
	members, ok := groups[name]
	if !ok {
		t.Fatalf("unknown system call group %s", name)
	}
	calls := map[string]bool{}
	for _, m := range members {
		if strings.HasPrefix(m, "@") {
			if seen[m] {
				continue
			}
			seen[m] = true
			for c := range expand(t, groups, m, seen) {
				calls[c] = true
			}
			continue
		}
		calls[m] = true
	}
	return calls
}
