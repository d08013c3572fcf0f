package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// TestAuditVerifyCluster: two nodes on one etcd publish their trails'
// signed heads; `proxy audit verify --cluster` over a directory of their
// trails (as an auditor collects them, without head files) passes, and
// fails naming the node when one trail is cut back behind its published
// head or missing.
func TestAuditVerifyCluster(t *testing.T) {
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	nodes := map[string]served{}
	for _, id := range []string{"node-a", "node-b"} { // node-a first: it makes the keyring and the map's keys
		nodes[id] = clusterNode(t, crm, smart, cl.Endpoints(), id, keyring)
		for _, addr := range []string{"jane." + id + "@example.com", "joe." + id + "@example.com"} {
			if r := runProxyBounded(t, time.Minute, nodes[id].config, "token", "new", addr); r.code != 0 {
				t.Fatalf("token new on %s: exit %d\n%s%s", id, r.code, r.stdout, r.log)
			}
		}
	}
	dir := t.TempDir()
	trail := func(id string) string { return filepath.Join(dir, id+".jsonl") }
	for id, sv := range nodes {
		b, err := os.ReadFile(filepath.Join(sv.dataDir, "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(trail(id), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := func() binRun {
		return runProxyBounded(t, time.Minute, nodes["node-a"].config, "audit", "verify", "--cluster", "--trails", dir)
	}
	r := verify()
	if r.code != 0 || !strings.Contains(r.stdout, "result: OK, 2 node(s)") {
		t.Fatalf("verify --cluster: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	t.Logf("two nodes:\n%s", r.stdout)
	if r := runProxyBounded(t, time.Minute, nodes["node-b"].config, "cluster", "status"); r.code != 0 ||
		!strings.Contains(r.stdout, "audit heads: 2 published") || !strings.Contains(r.stdout, "node-a") {
		t.Fatalf("cluster status does not list both heads: exit %d\n%s%s", r.code, r.stdout, r.log)
	}

	// node-b's trail without its last two records (Close's stop record
	// and checkpoint): a consistent chain, shorter than its head.
	whole, _ := os.ReadFile(trail("node-b"))
	lines := bytes.SplitAfter(whole, []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-3], nil)
	if err := os.WriteFile(trail("node-b"), cut, 0o600); err != nil {
		t.Fatal(err)
	}
	r = verify()
	if r.code != 1 || !strings.Contains(r.stdout, "node node-b: the trail ends at seq") || !strings.Contains(r.stdout, "node node-a: OK") {
		t.Fatalf("verify --cluster with node-b's trail cut: exit %d, want 1 naming node-b\n%s%s", r.code, r.stdout, r.log)
	}
	t.Logf("node-b cut:\n%s", r.stdout)

	os.WriteFile(trail("node-b"), whole, 0o600)
	os.Remove(trail("node-a"))
	r = verify()
	if r.code != 1 || !strings.Contains(r.stdout, "node node-a published a head at seq") || !strings.Contains(r.stdout, "node node-b: OK") {
		t.Fatalf("verify --cluster without node-a's trail: exit %d, want 1 naming node-a\n%s%s", r.code, r.stdout, r.log)
	}
}
