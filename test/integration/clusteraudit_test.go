package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestClusterComplianceMergesTrails: a subject's token created on node A
// (its creation record in A's trail) and resolved on node B (B's trail):
// the subject export from either node lists both nodes' records, the
// creation first; the audit listing from B holds A's creation record.
// With B stopped, A's export names B's trail as missing and A's listing
// fails as incomplete. No node logs the address.
func TestClusterComplianceMergesTrails(t *testing.T) {
	n := startTwoNodes(t)
	crm, a, b, pa, pb := n.crm, n.a, n.b, n.pa, n.pb

	if r := sendCustomer(a.inPort, "jane.doe@example.com", "<c1@mail.example.com>"); r != "250" {
		t.Fatalf("customer message through A: %s\n%s", r, pa.log.String())
	}
	tok := tokenRE.FindString(sinkByID(crm.messages())["<c1@mail.example.com>"])
	if tok == "" {
		t.Fatalf("no token in the CRM's copy: %q", crm.messages())
	}
	if r := sendReply(t, b, tok, "<r1@crm.example>"); r != "250" {
		t.Fatalf("CRM reply through B: %s\n%s", r, pb.log.String())
	}

	for _, sv := range []served{a, b} {
		ex := exportOn(t, sv, "jane.doe@example.com")
		var events []string
		for _, r := range ex.Audit {
			if len(r.Tokens) == 1 && strings.EqualFold(r.Tokens[0], tok) {
				events = append(events, r.Event)
			}
		}
		if got := strings.Join(events, ","); !strings.HasPrefix(got, "token.created,token.resolved") {
			t.Errorf("export from %s: records of the token = %s, want A's token.created then B's token.resolved", sv.config, got)
		}
		if len(ex.Trails) != 2 || ex.Trails[0].Missing != "" || ex.Trails[1].Missing != "" {
			t.Errorf("export from %s: trails = %+v, want node-a and node-b read", sv.config, ex.Trails)
		}
	}
	code, out, errOut := cliOn(t, b, "sam-token", "compliance", "audit", "--event", "token.created", "--token", tok)
	if code != 0 || strings.Count(out, `"token.created"`) != 1 {
		t.Fatalf("compliance audit on B: exit %d, want A's creation record once:\n%s%s", code, out, errOut)
	}

	stopServe(t, pb)
	ex := exportOn(t, a, "jane.doe@example.com")
	if len(ex.Trails) != 2 || ex.Trails[1].Node != "node-b" || ex.Trails[1].Missing == "" {
		t.Errorf("export from A with B stopped: trails = %+v, want node-b missing", ex.Trails)
	}
	code, _, errOut = cliOn(t, a, "sam-token", "compliance", "audit", "--event", "token.created")
	if code == 0 || !strings.Contains(errOut, "incomplete listing: the records of node(s) node-b are missing") {
		t.Errorf("compliance audit on A with B stopped: exit %d, want it incomplete naming node-b:\n%s", code, errOut)
	}
	for _, p := range []*proxyProc{pa, pb} {
		if strings.Contains(strings.ToLower(p.log.String()), "jane.doe") {
			t.Errorf("a node's log names the customer:\n%s", p.log.String())
		}
	}
	stopServe(t, pa)
}

// clusterExport is what the test reads of a subject export.
type clusterExport struct {
	Audit []struct {
		Event  string   `json:"event"`
		Tokens []string `json:"tokens"`
	} `json:"audit"`
	Trails []struct {
		Node    string `json:"node"`
		Records int    `json:"records"`
		Missing string `json:"missing"`
	} `json:"trails"`
}

// exportOn runs `proxy compliance export` against a node as the officer.
func exportOn(t *testing.T, sv served, address string) clusterExport {
	t.Helper()
	code, out, errOut := cliOn(t, sv, "alice-token", "compliance", "export", address, "--reason", "subject access request 2026-9")
	if code != 0 {
		t.Fatalf("compliance export on %s: exit %d\n%s", sv.config, code, errOut)
	}
	var ex clusterExport
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	return ex
}

// cliOn runs a `proxy compliance` command against a node with a bearer
// token, bounded in time.
func cliOn(t *testing.T, sv served, token string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(proxyBinary(t), append([]string{"--config", sv.config}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TOKENPROXY_TOKEN=" + token}
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not end within a minute", args)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}
