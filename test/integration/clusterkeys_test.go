package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestClusterForeignKeyring: a second node whose keyring file is its own,
// not a copy of the first node's, cannot unwrap the map's data keys in
// etcd; it refuses to start, naming the cause and the fix, instead of
// serving (or creating keys of its own).
func TestClusterForeignKeyring(t *testing.T) {
	cl := etcdtest.Start(t)
	crm, smart := startMemSink(t), startMemSink(t)
	a := clusterNode(t, crm, smart, cl.Endpoints(), "node-a", filepath.Join(t.TempDir(), "keyring.json"))
	pa := startServe(t, a.config, a.admin)

	other := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := vault.OpenLocal(other, vault.LocalOptions{Create: true}); err != nil {
		t.Fatal(err)
	}
	b := clusterNode(t, crm, smart, cl.Endpoints(), "node-b", other)
	r := runProxyBounded(t, 60*time.Second, b.config, "serve")
	want := "every node needs the same Vault transit key (or, for evaluation, the same keyring file)"
	if r.code != 1 || !strings.Contains(r.log+r.stdout, want) {
		t.Fatalf("serve with another keyring file: exit %d, want 1 saying %q\n%s%s", r.code, want, r.stdout, r.log)
	}
	if r := sendCustomer(a.inPort, "jane.doe@example.com", "<c1@mail.example.com>"); r != "250" {
		t.Fatalf("node A after B's refused start: %s\n%s", r, pa.log.String())
	}
	stopServe(t, pa)
}
