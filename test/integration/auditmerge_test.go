package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// clusterTrails runs two nodes on one etcd, makes two tokens on each
// with `proxy token new`, and copies their trails into a directory as an
// auditor collects them. It returns the nodes, the directory and the
// tokens by address.
func clusterTrails(t *testing.T) (map[string]served, string, map[string]string) {
	t.Helper()
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	nodes, tokens := map[string]served{}, map[string]string{}
	for _, id := range []string{"node-a", "node-b"} { // node-a first: it makes the keyring and the map's keys
		nodes[id] = clusterNode(t, crm, smart, cl.Endpoints(), id, keyring)
		for _, addr := range []string{"jane." + id + "@example.com", "joe." + id + "@example.com"} {
			r := runProxyBounded(t, time.Minute, nodes[id].config, "token", "new", addr)
			if r.code != 0 {
				t.Fatalf("token new on %s: exit %d\n%s%s", id, r.code, r.stdout, r.log)
			}
			tokens[addr] = strings.TrimSpace(r.stdout)
		}
	}
	dir := t.TempDir()
	for id, sv := range nodes {
		copyFile(t, filepath.Join(sv.dataDir, "audit.jsonl"), filepath.Join(dir, id+".jsonl"))
	}
	return nodes, dir, tokens
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// creationOf returns the token.created record of tok in a trail.
func creationOf(t *testing.T, path, tok string) audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []audit.Record
	q := audit.Query{Events: []string{audit.TokenCreated}, Token: tok}
	if err := audit.Select(f, q, func(r audit.Record) error { got = append(got, r); return nil }); err != nil || len(got) != 1 {
		t.Fatalf("creation records of %s: %d, %v", tok, len(got), err)
	}
	return got[0]
}

// redeliver appends rec to the trail at path as the node that took a
// dead node's outbox over would: the same change under the same ref,
// in a chain that still verifies.
func redeliver(t *testing.T, path string, rec audit.Record) {
	t.Helper()
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	rec.Seq, rec.Time, rec.Prev, rec.Hash = 0, time.Time{}, "", ""
	if _, err := l.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	os.Remove(audit.HeadPath(path)) // an auditor's copy has no head file
}

// TestAuditClusterMerged: across two nodes' trails, a ref delivered by
// both (node-b re-delivering node-a's creation, as after a takeover) is
// reported once as a duplicate and verify still passes; the merged
// export is in time order with the duplicate left out; and a creation
// record deleted from node-a's trail fails verify, naming the token.
func TestAuditClusterMerged(t *testing.T) {
	nodes, dir, tokens := clusterTrails(t)
	trail := func(id string) string { return filepath.Join(dir, id+".jsonl") }
	dupTok := tokens["joe.node-a@example.com"]
	dup := creationOf(t, trail("node-a"), dupTok)
	redeliver(t, trail("node-b"), dup)
	ref := dup.Detail["ref"]

	verify := func() binRun {
		return runProxyBounded(t, time.Minute, nodes["node-a"].config, "audit", "verify", "--cluster", "--trails", dir)
	}
	r := verify()
	if r.code != 0 || !strings.Contains(r.stdout, "result: OK, 2 node(s)") ||
		!strings.Contains(r.stdout, "duplicates: 1 ref(s) delivered more than once (not a failure") ||
		strings.Count(r.stdout, "ref "+ref+":") != 1 ||
		!strings.Contains(r.stdout, "creations: OK, each of the map's 4 token(s)") {
		t.Fatalf("verify --cluster with a duplicate: exit %d, want 0, the ref %s listed once\n%s%s", r.code, ref, r.stdout, r.log)
	}
	t.Logf("duplicate:\n%s", r.stdout)

	merged := filepath.Join(t.TempDir(), "merged.jsonl")
	r = runProxyBounded(t, time.Minute, nodes["node-a"].config, "audit", "export", "--cluster", "--trails", dir, "--out", merged)
	if r.code != 0 || !strings.Contains(r.log, "1 delivered twice left out") {
		t.Fatalf("audit export --cluster: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	checkMerged(t, merged, len(tokens))

	// node-a's trail without jane.node-a's creation record.
	whole, _ := os.ReadFile(trail("node-a"))
	var kept [][]byte
	for _, line := range bytes.SplitAfter(whole, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"token.created"`)) || !bytes.Contains(line, []byte(tokens["jane.node-a@example.com"])) {
			kept = append(kept, line)
		}
	}
	os.WriteFile(trail("node-a"), bytes.Join(kept, nil), 0o600)
	r = verify()
	if r.code != 1 || !strings.Contains(r.stdout, "token "+tokens["jane.node-a@example.com"]+": no creation record in any trail") ||
		!strings.Contains(r.stdout, "1 token(s) without a creation record") {
		t.Fatalf("verify --cluster without a creation record: exit %d, want 1 naming the token\n%s%s", r.code, r.stdout, r.log)
	}
	t.Logf("creation record deleted:\n%s", r.stdout)
}

// checkMerged checks a merged export: records in time order, each token
// created once.
func checkMerged(t *testing.T, path string, tokens int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	created := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("merged line %q: %v", line, err)
		}
		if r.Time.Before(last) {
			t.Fatalf("merged export out of time order at %s", line)
		}
		last = r.Time
		if r.Event == audit.TokenCreated {
			created[r.Tokens[0]]++
		}
	}
	if len(created) != tokens {
		t.Fatalf("merged export creates %d tokens, want %d", len(created), tokens)
	}
	for tok, n := range created {
		if n != 1 {
			t.Errorf("merged export creates %s %d times", tok, n)
		}
	}
}
