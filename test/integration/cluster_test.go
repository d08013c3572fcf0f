package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// clusterNode writes the configuration of one node of a cluster: the
// serve tests' configuration, the map in etcd under the node's own
// node_id, the keyring file every node shares (the evaluation set-up:
// the same local keyring copied to each node), and an officer.
func clusterNode(t *testing.T, crm, smart *memSink, endpoints []string, node, keyring string) served {
	t.Helper()
	sv := writeServeConfig(t, crm.addr, smart.addr, "info", "client_networks: [127.0.0.0/8]")
	h := sha256.Sum256([]byte("alice-token"))
	hs := sha256.Sum256([]byte("sam-token"))
	f, err := os.OpenFile(sv.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, `keys: {provider: local, local: {key_file: %s}}
store:
  backend: etcd
  etcd: {endpoints: ["%s"], node_id: %s}
compliance:
  enabled: true
  principals: [{name: alice, roles: [officer], token_sha256: %s}, {name: sam, roles: [auditor], token_sha256: %s}]
`, keyring, strings.Join(endpoints, `", "`), node, hex.EncodeToString(h[:]), hex.EncodeToString(hs[:]))
	return sv
}

// twoNodes is two `proxy serve` nodes, A and B, on one 3-member etcd
// cluster, sharing a keyring file and the CRM and smarthost sinks.
type twoNodes struct {
	cl         *etcdtest.Cluster
	crm, smart *memSink
	keyring    string
	a, b       served
	pa, pb     *proxyProc
}

// startTwoNodes starts A first (it creates the keyring and the map's data
// keys), then B.
func startTwoNodes(t *testing.T) twoNodes {
	t.Helper()
	n := twoNodes{cl: etcdtest.Start(t), crm: startMemSink(t), smart: startMemSink(t),
		keyring: filepath.Join(t.TempDir(), "keyring.json")}
	n.a = clusterNode(t, n.crm, n.smart, n.cl.Endpoints(), "node-a", n.keyring)
	n.pa = startServe(t, n.a.config, n.a.admin)
	n.b = clusterNode(t, n.crm, n.smart, n.cl.Endpoints(), "node-b", n.keyring)
	n.pb = startServe(t, n.b.config, n.b.admin)
	return n
}

// sendReply sends the CRM's reply to token through a node's outbound route
// (STARTTLS; the loopback network needs no AUTH) and returns the reply.
func sendReply(t *testing.T, sv served, token, id string) string {
	t.Helper()
	c, err := gosmtp.DialStartTLS(fmt.Sprintf("127.0.0.1:%d", sv.outPort), selfSignedTrust(t, sv.dataDir, "relay.company.example"))
	if err != nil {
		return replyOf(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("From: support@crm.example\r\nTo: %s\r\nSubject: Re: help\r\nMessage-ID: %s\r\n\r\nanswer\r\n", token, id)
	return replyOf(c.SendMail("support@crm.example", []string{token}, strings.NewReader(msg)))
}

// TestClusterTwoNodes runs two `proxy serve` nodes on one 3-member etcd
// cluster: a customer's message through node A, the CRM's reply through
// node B reaches the customer; the customer's next message through B keeps
// its token; an erasure on B stops replies through A (550 5.1.1), and the
// time that takes is the propagation bound measured here.
func TestClusterTwoNodes(t *testing.T) {
	n := startTwoNodes(t)
	crm, smart, a, b, pa, pb := n.crm, n.smart, n.a, n.b, n.pa, n.pb

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
	if got := sinkByID(smart.messages())["<r1@crm.example>"]; !strings.Contains(got, "To: jane.doe@example.com") {
		t.Fatalf("the reply through B did not reach the customer:\n%s", got)
	}
	if r := sendCustomer(b.inPort, "jane.doe@example.com", "<c2@mail.example.com>"); r != "250" {
		t.Fatalf("customer message through B: %s", r)
	}
	if again := tokenRE.FindString(sinkByID(crm.messages())["<c2@mail.example.com>"]); again != tok {
		t.Fatalf("the customer got token %s through B, %s through A", again, tok)
	}

	erased := eraseOn(t, b, "jane.doe@example.com")
	var refused time.Duration
	for i := 0; ; i++ {
		r := sendReply(t, a, tok, fmt.Sprintf("<r-after-%d@crm.example>", i))
		if strings.HasPrefix(r, "550 5.1.1") {
			refused = time.Since(erased)
			break
		}
		if time.Since(erased) > 5*time.Second {
			t.Fatalf("a reply through A still gets %q %s after the erasure on B", r, time.Since(erased))
		}
	}
	t.Logf("erasure on B refused through A after %s", refused)

	for _, p := range []*proxyProc{pa, pb} {
		if bytes.Contains([]byte(strings.ToLower(p.log.String())), []byte("jane.doe")) {
			t.Errorf("a node's log names the customer:\n%s", p.log.String())
		}
	}
	stopServe(t, pb)
	stopServe(t, pa)
	for _, sv := range []served{a, b} {
		if r := runProxyBounded(t, 30*time.Second, sv.config, "audit", "verify"); r.code != 0 {
			t.Errorf("audit verify of %s: exit %d\n%s%s", sv.config, r.code, r.stdout, r.log)
		}
	}
}

// eraseOn erases a subject through a node's compliance API with `proxy
// compliance erase` and returns when the call returned.
func eraseOn(t *testing.T, sv served, address string) time.Time {
	t.Helper()
	if code, out := proxyCLI(t, sv.config, "alice-token", "compliance", "erase", address, "--reason", "erasure request 2026-7"); code != 0 {
		t.Fatalf("compliance erase: exit %d\n%s", code, out)
	}
	return time.Now()
}

// TestClusterEtcdDownAtStart: a node whose etcd cannot be reached refuses
// to start, naming the endpoints and the cause, instead of serving.
func TestClusterEtcdDownAtStart(t *testing.T) {
	crm, smart := startMemSink(t), startMemSink(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	sv := clusterNode(t, crm, smart, []string{dead}, "node-a", filepath.Join(t.TempDir(), "keyring.json"))
	rewriteConfig(t, sv.config, "node_id: node-a}", "node_id: node-a, dial_timeout: 1s}")
	r := runProxyBounded(t, 30*time.Second, sv.config, "serve")
	if r.code != 1 || !strings.Contains(r.log+r.stdout, dead) {
		t.Fatalf("serve with etcd down: exit %d, want 1 naming %s\n%s%s", r.code, dead, r.stdout, r.log)
	}
}
