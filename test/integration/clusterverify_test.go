package integration

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClusterVerifyFromAnyNode: the compliance API's verify on node B
// (`proxy compliance verify`, as the auditor) verifies A's trail too,
// read through A's peer endpoint and held to the head A published in
// etcd, and checks each token's creation record across both trails.
// With A stopped, A is reported not verified and the verify fails; with
// A's trail cut back while it was stopped (head file removed with it, as
// whoever cut it would), B finds A's trail behind the head it published.
// The console's verify and its trail view on B show both nodes.
func TestClusterVerifyFromAnyNode(t *testing.T) {
	n := startTwoNodes(t)
	crm, a, b, pa, pb := n.crm, n.a, n.b, n.pa, n.pb

	if r := sendCustomer(a.inPort, "jane.doe@example.com", "<v1@mail.example.com>"); r != "250" {
		t.Fatalf("customer message through A: %s\n%s", r, pa.log.String())
	}
	tok := tokenRE.FindString(sinkByID(crm.messages())["<v1@mail.example.com>"])
	if r := sendReply(t, b, tok, "<vr1@crm.example>"); r != "250" {
		t.Fatalf("CRM reply through B: %s\n%s", r, pb.log.String())
	}
	for _, sv := range []served{b, a} {
		v := verifyOn(t, sv, 0)
		if got := v.states(); got != "node-b=ok node-a=ok" && got != "node-a=ok node-b=ok" {
			t.Errorf("verify on %s: nodes %s, want both ok", sv.config, got)
		}
		if !v.Creations.Checked || v.Creations.Tokens != 1 {
			t.Errorf("verify on %s: creations %+v, want the token checked", sv.config, v.Creations)
		}
	}

	cc := signInConsole(t, b.admin, "sam-token")
	page := cc.verifyCluster()
	if !strings.Contains(page, "<strong>Verified.</strong>") || !strings.Contains(page, "<td>node-a</td><td>verified</td>") ||
		!strings.Contains(page, "each of the map's 1 tokens has its creation record in a trail") {
		t.Errorf("the console's verify on B does not show both nodes verified:\n%s", page)
	}
	if _, page = cc.get("/console/overview"); !strings.Contains(page, "with every node's trail (2 nodes)") {
		t.Errorf("the overview on B does not say every node's trail was verified:\n%s", page)
	}

	// The trail view on B pages through both nodes' records.
	_, page = cc.get("/console/audit?event=token.created")
	if !strings.Contains(page, `<td class="node">node-a</td>`) || !strings.Contains(page, tok) || strings.Contains(page, "missing from this view") {
		t.Errorf("the console's trail view on B does not show A's token.created record:\n%s", page)
	}
	link := regexp.MustCompile(`<td class="node">node-a</td><td><a href="(/console/audit/record/\d+\?node=node-a)">`).FindStringSubmatch(page)
	if link == nil {
		t.Fatalf("no link to A's record in B's trail view:\n%s", page)
	}
	if code, rec := cc.get(link[1]); code != 200 || !strings.Contains(rec, tok) || !strings.Contains(rec, "token.created") {
		t.Errorf("A's record through B's console: %d\n%s", code, rec)
	}
	_, page = cc.get("/console/audit")
	if !strings.Contains(page, `<td class="node">node-a</td>`) || !strings.Contains(page, `<td class="node">node-b</td>`) {
		t.Errorf("the console's trail view on B does not show both nodes' records:\n%s", page)
	}

	stopServe(t, pa)
	if _, page = cc.get("/console/audit"); !strings.Contains(page, "The records of node <strong>node-a</strong> are missing from this view") {
		t.Errorf("the console's trail view on B with A stopped does not name node-a missing:\n%s", page)
	}
	page = cc.verifyCluster()
	if !strings.Contains(page, "<td>node-a</td><td><strong>not verified</strong></td>") || strings.Contains(page, "<strong>Verified.</strong>") {
		t.Errorf("the console's verify on B with A stopped does not show node-a not verified:\n%s", page)
	}
	v := verifyOn(t, b, 1)
	if got := v.states(); got != "node-b=ok node-a=not_verified" || v.Creations.Checked {
		t.Errorf("verify on B with A stopped: nodes %s, creations %+v; want node-a not verified, creations not checked", got, v.Creations)
	}
	t.Logf("A stopped: %s", v.raw)

	// A's trail cut back to its first half while A is stopped.
	path := filepath.Join(a.dataDir, "audit.jsonl")
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(whole, []byte("\n"))
	if err := os.WriteFile(path, bytes.Join(lines[:len(lines)/2], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".head"); err != nil {
		t.Fatal(err)
	}
	pa = startServe(t, a.config, a.admin)
	v = verifyOn(t, b, 1)
	if got := v.states(); got != "node-b=ok node-a=failed" || !strings.Contains(v.nodeProblems("node-a"), "head it published") {
		t.Errorf("verify on B with A's trail cut: nodes %s, A's problems %q; want node-a failed against its published head", got, v.nodeProblems("node-a"))
	}
	t.Logf("A cut: %s", v.raw)
	for _, p := range []*proxyProc{pa, pb} {
		if strings.Contains(strings.ToLower(p.log.String()), "jane.doe") {
			t.Errorf("a node's log names the customer:\n%s", p.log.String())
		}
	}
	stopServe(t, pa)
	stopServe(t, pb)
}

// clusterVerify is what the test reads of the API's verify.
type clusterVerify struct {
	OK    bool `json:"ok"`
	Nodes []struct {
		Node        string   `json:"node"`
		State       string   `json:"state"`
		Problems    []string `json:"problems"`
		NotVerified string   `json:"not_verified"`
	} `json:"nodes"`
	Creations struct {
		Checked bool `json:"checked"`
		Tokens  int  `json:"tokens"`
	} `json:"creations"`
	raw string
}

func (v clusterVerify) states() string {
	var out []string
	for _, n := range v.Nodes {
		out = append(out, n.Node+"="+n.State)
	}
	return strings.Join(out, " ")
}

func (v clusterVerify) nodeProblems(node string) string {
	for _, n := range v.Nodes {
		if n.Node == node {
			return strings.Join(n.Problems, "; ")
		}
	}
	return ""
}

// verifyOn runs `proxy compliance verify` against a node as the auditor
// and wants exit code want (1: the cluster does not verify).
func verifyOn(t *testing.T, sv served, want int) clusterVerify {
	t.Helper()
	code, out, errOut := cliOn(t, sv, "sam-token", "compliance", "verify")
	var v clusterVerify
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != want || v.OK != (want == 0) {
		t.Fatalf("compliance verify on %s: exit %d (want %d), %v\n%s%s", sv.config, code, want, err, out, errOut)
	}
	if strings.Contains(strings.ToLower(out), "jane.doe") {
		t.Errorf("the verify's answer names the customer:\n%s", out)
	}
	v.raw = out
	return v
}

// verifyCluster starts a verification in the console, waits for it to
// end and returns its result page.
func (cc *consoleClient) verifyCluster() string {
	cc.t.Helper()
	_, page := cc.get("/console/audit")
	m := consoleCSRFRE.FindStringSubmatch(page)
	if m == nil {
		cc.t.Fatalf("audit page without a form:\n%s", page)
	}
	resp, err := cc.c.PostForm(cc.base+"/console/audit/verify", url.Values{"csrf": {m[1]}})
	if err != nil {
		cc.t.Fatal(err)
	}
	resp.Body.Close()
	job := resp.Request.URL.Path // the progress page the POST redirected to
	deadline := time.Now().Add(time.Minute)
	for {
		code, page := cc.get(job)
		if code == 200 && !strings.Contains(page, "verify-progress") {
			return page
		}
		if time.Now().After(deadline) {
			cc.t.Fatalf("the console's verification did not end within a minute: %d\n%s", code, page)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
