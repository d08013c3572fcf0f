package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

// openClusterStore opens a node's etcd map through the Store interface
// under a node id of the test's own (the node's may be in use).
func openClusterStore(t *testing.T, sv served) tokenize.Store {
	t.Helper()
	cfg, err := policy.Load(sv.config)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Store.Etcd
	db, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: e.Endpoints, Prefix: e.Prefix,
		Tenant: cfg.Tokens.Tenant, NodeID: "replay-test"})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// snapshotTokens copies every token's stored value: the map as an etcd
// snapshot holds it.
func snapshotTokens(t *testing.T, sv served) map[string][]byte {
	t.Helper()
	db := openClusterStore(t, sv)
	defer db.Close()
	snap := map[string][]byte{}
	err := db.View(context.Background(), func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(local string, v []byte) (bool, error) {
			snap[local] = append([]byte(nil), v...)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// restoreTokens writes a snapshot's values back through the Store: what
// restoring the snapshot does to the tokens it holds.
func restoreTokens(t *testing.T, sv served, snap map[string][]byte) {
	t.Helper()
	db := openClusterStore(t, sv)
	defer db.Close()
	err := db.Update(context.Background(), func(tx tokenize.Tx) error {
		for local, v := range snap {
			if err := tx.PutToken(local, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// resolves reports whether `proxy token resolve` finds the token's
// address on a stopped node.
func resolves(t *testing.T, sv served, tok string) bool {
	t.Helper()
	r := runProxyBounded(t, time.Minute, sv.config, "token", "resolve", "--reason", "replay test", tok)
	return r.code == 0
}

// TestReplayErasuresCluster: two nodes on one etcd; a subject erased
// through node B's compliance API after a snapshot of the map comes back
// when the snapshot is restored (the problem), and `proxy store
// replay-erasures --trails DIR` run on node A with both nodes' trails
// erases it again; the replay is in node A's trail.
func TestReplayErasuresCluster(t *testing.T) {
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	a := clusterNode(t, crm, smart, cl.Endpoints(), "node-a", keyring)
	tokens := map[string]string{}
	for _, addr := range []string{"jane.doe@example.com", "joe.bloggs@example.com"} { // first: the keyring and the map's keys
		r := runProxyBounded(t, time.Minute, a.config, "token", "new", addr)
		if r.code != 0 {
			t.Fatalf("token new: exit %d\n%s%s", r.code, r.stdout, r.log)
		}
		tokens[addr] = strings.TrimSpace(r.stdout)
	}
	jane, joe := tokens["jane.doe@example.com"], tokens["joe.bloggs@example.com"]
	snap := snapshotTokens(t, a)

	b := clusterNode(t, crm, smart, cl.Endpoints(), "node-b", keyring)
	pb := startServe(t, b.config, b.admin)
	eraseOn(t, b, "jane.doe@example.com")
	stopServe(t, pb)
	if resolves(t, a, jane) {
		t.Fatal("the erased token resolves on node A before any restore")
	}

	restoreTokens(t, a, snap)
	if !resolves(t, a, jane) {
		t.Fatal("the restored snapshot did not bring the erased token back: the test simulates nothing")
	}

	dir := t.TempDir()
	for id, sv := range map[string]served{"node-a": a, "node-b": b} {
		copyFile(t, filepath.Join(sv.dataDir, "audit.jsonl"), filepath.Join(dir, id+".jsonl"))
	}
	r := runProxyBounded(t, time.Minute, a.config, "store", "replay-erasures", "--trails", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "in 2 trail(s): 1 erased again") || !strings.Contains(r.stdout, "erased again: "+jane) {
		t.Fatalf("replay-erasures: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	t.Logf("replay:\n%s", r.stdout)
	if resolves(t, a, jane) || resolves(t, b, jane) {
		t.Fatal("the erased token resolves after the replay")
	}
	if !resolves(t, a, joe) {
		t.Fatal("a token nobody erased stopped resolving")
	}
	if n := countEvents(t, filepath.Join(a.dataDir, "audit.jsonl"), audit.ErasuresReplayed); n != 1 {
		t.Fatalf("%d replay records in node A's trail, want 1", n)
	}
	if strings.Contains(strings.ToLower(r.stdout+r.log), "jane.doe") {
		t.Fatalf("the replay's output names the customer:\n%s%s", r.stdout, r.log)
	}
}
