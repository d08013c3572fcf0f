package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// TestClusterKeysRotateWhileServing: `proxy keys rotate --record-key
// --token-key`, run against the cluster while two nodes serve (from an
// operator's configuration: the same store and keyring file, a data
// directory of its own), reaches both nodes without a restart: a new
// customer through B gets a t2- token that a reply through A resolves, a
// known customer keeps his t1- token, and the command returns once every
// record is sealed under the new record key.
func TestClusterKeysRotateWhileServing(t *testing.T) {
	n := startTwoNodes(t)
	cl, crm, smart, keyring, a, b, pa, pb := n.cl, n.crm, n.smart, n.keyring, n.a, n.b, n.pa, n.pb
	if r := sendCustomer(a.inPort, "jane.doe@example.com", "<c1@mail.example.com>"); r != "250" {
		t.Fatalf("customer message through A: %s\n%s", r, pa.log.String())
	}
	known := tokenRE.FindString(sinkByID(crm.messages())["<c1@mail.example.com>"])

	ops := clusterNode(t, crm, smart, cl.Endpoints(), "ops", keyring)
	r := runProxyBounded(t, 60*time.Second, ops.config, "keys", "rotate", "--record-key", "--token-key")
	if r.code != 0 || !strings.Contains(r.stdout, "every record is sealed under the newest record key") {
		t.Fatalf("keys rotate while the cluster serves: exit %d\n%s%s", r.code, r.stdout, r.log)
	}

	t2 := regexp.MustCompile(`t2-[a-z2-7]{16}@relay\.company\.example`)
	var tok string
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; tok == ""; i++ {
		id := fmt.Sprintf("<new-%d@mail.example.com>", i)
		if r := sendCustomer(b.inPort, fmt.Sprintf("new.%d@example.com", i), id); r != "250" {
			t.Fatalf("new customer through B: %s\n%s", r, pb.log.String())
		}
		tok = t2.FindString(sinkByID(crm.messages())[id])
		if tok == "" && time.Now().After(deadline) {
			t.Fatalf("B still gives t1- tokens 5 s after the rotation\n%s", pb.log.String())
		}
	}
	if r := sendReply(t, a, tok, "<r1@crm.example>"); r != "250" {
		t.Fatalf("reply through A to B's t2- token: %s\n%s", r, pa.log.String())
	}
	if r := sendCustomer(b.inPort, "jane.doe@example.com", "<c2@mail.example.com>"); r != "250" {
		t.Fatalf("known customer through B: %s", r)
	}
	if again := tokenRE.FindString(sinkByID(crm.messages())["<c2@mail.example.com>"]); again != known {
		t.Fatalf("the known customer got %q after the rotation, had %s", again, known)
	}
	if r := sendReply(t, b, known, "<r2@crm.example>"); r != "250" {
		t.Fatalf("reply through B to the known token: %s", r)
	}
	stopServe(t, pb)
	stopServe(t, pa)
}

// TestClusterKeysRotateOnServingNode: `proxy keys rotate` run with a
// serving node's own configuration (its trail locked by the serving
// process) rotates: the keys.rotated record goes through etcd, and a
// serving node writes it to its trail once the command ended. Both
// trails verify afterwards.
func TestClusterKeysRotateOnServingNode(t *testing.T) {
	n := startTwoNodes(t)
	a, b, pa, pb := n.a, n.b, n.pa, n.pb

	r := runProxyBounded(t, 60*time.Second, a.config, "keys", "rotate", "--record-key")
	if r.code != 0 || !strings.Contains(r.stdout, "every record is sealed under the newest record key") {
		t.Fatalf("keys rotate with node A's configuration while A serves: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	trails := []string{filepath.Join(a.dataDir, "audit.jsonl"), filepath.Join(b.dataDir, "audit.jsonl")}
	deadline := time.Now().Add(30 * time.Second)
	for rotated(t, trails) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no keys.rotated record in either trail 30 s after the command\nA:\n%s\nB:\n%s", pa.log.String(), pb.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := sendCustomer(b.inPort, "jane.doe@example.com", "<c1@mail.example.com>"); r != "250" {
		t.Fatalf("customer message through B after the rotation: %s", r)
	}
	stopServe(t, pb)
	stopServe(t, pa)
	if n := rotated(t, trails); n != 1 {
		t.Errorf("%d keys.rotated records over both trails, want 1", n)
	}
	for _, sv := range []served{a, b} {
		if r := runProxyBounded(t, 30*time.Second, sv.config, "audit", "verify"); r.code != 0 {
			t.Errorf("audit verify of %s: exit %d\n%s%s", sv.config, r.code, r.stdout, r.log)
		}
	}
}

// rotated counts the keys.rotated records with record_key=true in trails.
func rotated(t *testing.T, trails []string) int {
	t.Helper()
	n := 0
	for _, p := range trails {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"event":"keys.rotated"`) && strings.Contains(line, `"record_key":"true"`) {
				n++
			}
		}
	}
	return n
}
