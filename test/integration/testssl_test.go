package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// testsslFinding is one entry of testssl.sh's --jsonfile output.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// testssl runs testssl.sh --starttls smtp against both routes (protocols,
// forward secrecy, cipher categories and the vulnerability checks,
// LUCKY13 among them) when TOKENPROXY_TESTSSL is set: test/security.sh
// installs it (test/tools/install-testssl.sh) and sets it. Certificate
// checks are left out: the test's certificate is self-signed on purpose.
// Any LOW or worse finding fails the row (issue 18 item 10).
func (a *attacker) testssl() {
	if os.Getenv("TOKENPROXY_TESTSSL") == "" {
		return
	}
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			a.row("testssl.sh --starttls smtp", "(not installed)", err.Error(), "installed by test/security.sh", false)
			return
		}
	}
	for _, r := range []struct{ name, addr string }{{"inbound", a.in}, {"outbound", a.out}} {
		a.testsslRoute(bin, r.name, r.addr)
	}
}

func (a *attacker) testsslRoute(bin, route, addr string) {
	out := filepath.Join(a.t.TempDir(), "testssl.json")
	start := time.Now()
	cmd := exec.Command(bin, "--quiet", "--color", "0", "--warnings", "off", "--starttls", "smtp",
		"--protocols", "--fs", "--std", "--vulnerable", "--jsonfile", out, addr)
	log, err := cmd.CombinedOutput()
	sent := fmt.Sprintf("testssl.sh --starttls smtp -p -f -s -U (%s, %.0f s)", route, time.Since(start).Seconds())
	data, rerr := os.ReadFile(out)
	var findings []testsslFinding
	if rerr != nil || json.Unmarshal(data, &findings) != nil {
		a.row("testssl.sh: "+route, sent, fmt.Sprintf("no JSON: %v %v %s", err, rerr, lastLines(string(log), 3)), "no finding LOW or worse", false)
		return
	}
	var bad []string
	lucky13 := false
	for _, f := range findings {
		lucky13 = lucky13 || f.ID == "LUCKY13" && f.Severity == "OK"
		if slices.Contains([]string{"LOW", "MEDIUM", "HIGH", "CRITICAL"}, f.Severity) {
			bad = append(bad, f.ID+"="+f.Severity+" ("+f.Finding+")")
		}
	}
	reply := fmt.Sprintf("%d findings, none LOW or worse", len(findings))
	if len(bad) > 0 {
		reply = strings.Join(bad, "; ")
	}
	if !lucky13 {
		bad = append(bad, "no LUCKY13=OK finding")
		reply = strings.Join(bad, "; ")
	}
	a.row("testssl.sh: "+route, sent, reply, "no finding LOW or worse, LUCKY13 OK", len(bad) == 0)
}
