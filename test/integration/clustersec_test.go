package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// The security of the etcd store, against a real TLS cluster: mutual TLS
// on the client connections, one RBAC user per node limited to the map's
// prefix (as deploy/etcd/bootstrap-rbac.sh sets up), and what the
// members' data directories hold.

const secPrefix = "tp/"

// secOpen opens the map's store on cl as a node with the given TLS
// configuration (and RBAC password, if any), failing fast.
func secOpen(cl *etcdtest.Cluster, node string, tc *tls.Config, user, password string) (*etcdstore.Store, error) {
	return etcdstore.Open(context.Background(), etcdstore.Options{
		Endpoints: cl.Endpoints(), Prefix: secPrefix, Tenant: "acme", NodeID: node, TLS: tc,
		Username: user, Password: password, DialTimeout: 3 * time.Second, RequestTimeout: 2 * time.Second,
	})
}

// TestEtcdMutualTLS: a node presenting a certificate from the cluster's
// CA opens the map; a node without a certificate, with one from another
// CA, or trusting another CA for the members is refused at open with
// ErrStore naming the endpoints.
func TestEtcdMutualTLS(t *testing.T) {
	ca := etcdtest.NewCA(t, "cluster-ca")
	cl := etcdtest.StartWith(t, etcdtest.Options{TLS: ca})
	s, err := secOpen(cl, "node-a", ca.ClientTLS(t, "node-a"), "", "")
	if err != nil {
		t.Fatalf("open with the right client certificate: %v", err)
	}
	s.Close()

	rogue := etcdtest.NewCA(t, "rogue-ca")
	otherCert := ca.ClientTLS(t, "")
	otherCert.Certificates = rogue.ClientTLS(t, "node-a").Certificates
	for name, tc := range map[string]*tls.Config{
		"no client certificate":           ca.ClientTLS(t, ""),
		"certificate from another CA":     otherCert,
		"members checked against another": rogue.ClientTLS(t, "node-a"),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := secOpen(cl, "node-a", tc, "", "")
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tokenize.ErrStore) {
				t.Errorf("error is not ErrStore: %v", err)
			}
			for _, ep := range cl.Endpoints() {
				if !strings.Contains(err.Error(), ep) {
					t.Errorf("error does not name endpoint %s: %v", ep, err)
				}
			}
			if !strings.Contains(err.Error(), "tls: ") {
				t.Errorf("error does not say what TLS refused: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// nodeUser is one proxy node's etcd user: authenticated by its client
// certificate's CN (password empty) or by a password.
type nodeUser struct{ name, password string }

// enableRBAC does what deploy/etcd/bootstrap-rbac.sh does, through
// clientv3's Auth API as the root certificate: a root user (certificate
// only), one role per node granting readwrite on [prefix, prefix end)
// and nothing else, one user per node with that role, then auth enable.
func enableRBAC(t *testing.T, cli *clientv3.Client, prefix string, users ...nodeUser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("rbac: %s: %v", what, err)
		}
	}
	_, err := cli.UserAddWithOptions(ctx, etcdtest.RootCN, "", &clientv3.UserAddOptions{NoPassword: true})
	must("root user", err)
	_, err = cli.UserGrantRole(ctx, etcdtest.RootCN, "root")
	must("root role", err)
	for _, u := range users {
		role := "tokenproxy-" + u.name
		_, err = cli.RoleAdd(ctx, role)
		must(role, err)
		_, err = cli.RoleGrantPermission(ctx, role, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
		must(role+" permission", err)
		_, err = cli.UserAddWithOptions(ctx, u.name, u.password, &clientv3.UserAddOptions{NoPassword: u.password == ""})
		must(u.name, err)
		_, err = cli.UserGrantRole(ctx, u.name, role)
		must(u.name+" role", err)
	}
	_, err = cli.AuthEnable(ctx)
	must("auth enable", err)
}

// secMap is a token map on an open store, with the test keyring shared
// by every node (the wrapped keys are not in play here).
func secMap(t *testing.T, s tokenize.Store, keys *vault.Keyring) *tokenize.Map {
	t.Helper()
	m, err := tokenize.NewMap(s, keys, tokenize.Options{
		Format: tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength},
		Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestEtcdRBACPerNode: with auth enabled, node A (its certificate's CN is
// its user) and node B (user and password, over mTLS) share the map; A's
// user reads and writes nothing outside the prefix and cannot administer
// the cluster; a certificate whose CN is no user is refused at open.
func TestEtcdRBACPerNode(t *testing.T) {
	ca := etcdtest.NewCA(t, "cluster-ca")
	cl := etcdtest.StartWith(t, etcdtest.Options{TLS: ca})
	enableRBAC(t, cl.Client(t), secPrefix, nodeUser{name: "node-a"}, nodeUser{name: "node-b", password: "b-secret"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	keys := storetest.Keyring()
	sa, err := secOpen(cl, "node-a", ca.ClientTLS(t, "node-a"), "", "")
	if err != nil {
		t.Fatalf("node A (CN user): %v", err)
	}
	defer sa.Close()
	sb, err := secOpen(cl, "node-b", ca.ClientTLS(t, "appliance-b"), "node-b", "b-secret")
	if err != nil {
		t.Fatalf("node B (password user): %v", err)
	}
	defer sb.Close()
	ma, mb := secMap(t, sa, keys), secMap(t, sb, keys)
	iss, err := ma.Tokenize(ctx, "jane.doe@example.com", "Jane")
	if err != nil {
		t.Fatalf("tokenize on A: %v", err)
	}
	if e, err := mb.Resolve(ctx, iss.Address); err != nil || e.Original != "jane.doe@example.com" {
		t.Fatalf("resolve on B: %+v, %v", e, err)
	}

	// Node A's user, with clientv3 directly: the prefix yes, nothing else.
	cli, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), TLS: ca.ClientTLS(t, "node-a"),
		DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Get(ctx, secPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		t.Fatalf("node A reads its prefix: %v", err)
	}
	denied := map[string]func() error{
		"get outside":         func() error { _, err := cli.Get(ctx, "other/x"); return err },
		"put outside":         func() error { _, err := cli.Put(ctx, "other/x", "v"); return err },
		"put next to prefix":  func() error { _, err := cli.Put(ctx, "tq/x", "v"); return err },
		"put prefix sibling":  func() error { _, err := cli.Put(ctx, "tp", "v"); return err },
		"range over all":      func() error { _, err := cli.Get(ctx, "", clientv3.WithFromKey()); return err },
		"delete outside":      func() error { _, err := cli.Delete(ctx, "other/", clientv3.WithPrefix()); return err },
		"add a user":          func() error { _, err := cli.UserAdd(ctx, "mallory", "pw"); return err },
		"grant itself more":   func() error { _, err := cli.UserGrantRole(ctx, "node-a", "root"); return err },
		"disable auth":        func() error { _, err := cli.AuthDisable(ctx); return err },
		"take a snapshot":     func() error { r, err := cli.Snapshot(ctx); return firstReadErr(r, err) },
		"defragment a member": func() error { _, err := cli.Defragment(ctx, cl.Endpoints()[0]); return err },
	}
	for what, op := range denied {
		if err := op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("node A's user: %s: %v, want permission denied", what, err)
		}
	}

	if s, err := secOpen(cl, "node-c", ca.ClientTLS(t, "stranger"), "", ""); err == nil {
		s.Close()
		t.Error("a certificate whose CN is no etcd user opened the map")
	} else if !errors.Is(err, tokenize.ErrStore) {
		t.Errorf("stranger: %v, want ErrStore", err)
	}
}

// firstReadErr reads the start of a snapshot stream: etcd reports a
// refusal there, not when the call returns.
func firstReadErr(r interface{ Read([]byte) (int, error) }, err error) error {
	if err != nil {
		return err
	}
	_, err = r.Read(make([]byte, 1))
	return err
}

// dataFiles lists the regular files under a member's data directory.
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fileKind names what an etcd data file is: db (bbolt), wal, snap.
func fileKind(p string) string {
	switch {
	case strings.HasSuffix(p, ".wal") || strings.HasSuffix(p, ".tmp"):
		return "wal"
	case strings.HasSuffix(p, ".snap") || strings.HasSuffix(p, ".snap.db"):
		return "snap"
	case filepath.Base(p) == "db":
		return "db"
	}
	return "other"
}

// securedNode is clusterNode on a TLS cluster: the node presents a
// certificate whose CN is its etcd user.
func securedNode(t *testing.T, crm, smart *memSink, cl *etcdtest.Cluster, ca *etcdtest.CA, node, keyring string) served {
	t.Helper()
	sv := clusterNode(t, crm, smart, cl.Endpoints(), node, keyring)
	cert, key := ca.Issue(t, node)
	rewriteConfig(t, sv.config, "node_id: "+node+"}",
		"node_id: "+node+", tls: {ca_file: "+ca.CertFile+", cert_file: "+cert+", key_file: "+key+"}}")
	return sv
}

// TestEtcdDataHoldsNoAddress runs customers' messages and the CRM's
// replies through two `proxy serve` nodes on a TLS cluster with one RBAC
// user per node, erases one customer (the node's user may not compact:
// the wipe is scheduled), runs the members' maintenance job
// (deploy/etcd/etcd-maintain.sh, as root, on each member), stops the members and scans every file of every member's data
// directory: no customer address appears, plain, upper-case or in
// base64, and the erased record's ciphertext is in no member's database.
// Where else it survives (WAL, snapshots) is measured and logged: the
// runbook states that bound.
func TestEtcdDataHoldsNoAddress(t *testing.T) {
	ca := etcdtest.NewCA(t, "cluster-ca")
	// A low snapshot count makes the members write raft snapshots during
	// the test, so their files are scanned too.
	cl := etcdtest.StartWith(t, etcdtest.Options{TLS: ca, SnapshotCount: 100})
	root := cl.Client(t)
	enableRBAC(t, root, secPrefix, nodeUser{name: "node-a"}, nodeUser{name: "node-b"})
	crm, smart := startMemSink(t), startMemSink(t)
	keyring := filepath.Join(t.TempDir(), "keyring.json")
	a := securedNode(t, crm, smart, cl, ca, "node-a", keyring)
	pa := startServe(t, a.config, a.admin)
	b := securedNode(t, crm, smart, cl, ca, "node-b", keyring)
	pb := startServe(t, b.config, b.admin)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node A log:\n%s\nnode B log:\n%s", pa.log.String(), pb.log.String())
		}
	})

	customers := []string{"jane.doe@example.com", "Max.Mustermann@example.org", "zoe+orders@shop.example.net",
		"o'brien.kate@example.co.uk", "li.wei@sub.example.com"}
	tokens := map[string]string{}
	for i, addr := range customers {
		sv := []served{a, b}[i%2]
		id := "<c" + string(rune('a'+i)) + "@mail.example.com>"
		if r := sendCustomer(sv.inPort, addr, id); r != "250" {
			t.Fatalf("customer %d: %s\n%s%s", i, r, pa.log.String(), pb.log.String())
		}
		tokens[addr] = tokenRE.FindString(sinkByID(crm.messages())[id])
		if tokens[addr] == "" {
			t.Fatalf("customer %d: no token in the CRM's copy", i)
		}
		if r := sendReply(t, []served{b, a}[i%2], tokens[addr], "<r"+string(rune('a'+i))+"@crm.example>"); r != "250" {
			t.Fatalf("reply %d: %s", i, r)
		}
	}

	erased := customers[0]
	local, _, _ := strings.Cut(tokens[erased], "@")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, err := root.Get(ctx, secPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var cipher []byte
	for _, kv := range recs.Kvs {
		if strings.HasSuffix(string(kv.Key), "/t/"+local) {
			cipher = kv.Value
		}
	}
	if len(cipher) < 32 {
		t.Fatalf("the erased token's record %s not found under %s (or too short to scan for)", local, secPrefix)
	}
	eraseOn(t, b, erased)
	if r := sendReply(t, a, tokens[erased], "<r-erased@crm.example>"); !strings.HasPrefix(r, "550 5.1.1") {
		t.Logf("reply to the erased token through A right after: %s (the freshness bound applies)", r)
	}
	stopServe(t, pa)
	stopServe(t, pb)
	if !strings.Contains(pb.log.String(), "etcd_wipe_scheduled") {
		t.Errorf("node B's wipe was not scheduled for the members (its user may not compact):\n%s", pb.log.String())
	}
	// More than SnapshotCount entries after the erasure: every member
	// writes a raft snapshot, which is scanned too.
	for i := range 150 {
		if _, err := root.Put(ctx, "filler/k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	beforeMaint := countIn(t, cl, [][]byte{cipher})
	t.Logf("erased record's ciphertext after the erasure, before the members' maintenance job: %s", beforeMaint)

	// The members' maintenance job (deploy/etcd/etcd-maintain.sh, as the
	// timer runs it on each appliance: the local member, root's
	// certificate).
	rootCert, rootKey := ca.Issue(t, etcdtest.RootCN)
	state := t.TempDir()
	for i, ep := range cl.Endpoints() {
		cmd := exec.Command("sh", "../../deploy/etcd/etcd-maintain.sh")
		cmd.Env = append(os.Environ(), "ETCDCTL="+etcdtest.Etcdctl(t), "ETCD_ENDPOINT="+ep, "ETCD_PREFIX="+secPrefix,
			"ETCD_CACERT="+ca.CertFile, "ETCD_CERT="+rootCert, "ETCD_KEY="+rootKey,
			"STATE_FILE="+filepath.Join(state, fmt.Sprint(i), "handled"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "defragmented "+ep) {
			t.Fatalf("etcd-maintain.sh on %s: %v\n%s", ep, err, out)
		}
		t.Logf("%s", bytes.TrimSpace(out))
	}
	for _, m := range cl.Members {
		m.Stop()
	}
	after := countIn(t, cl, [][]byte{cipher})
	t.Logf("erased record's ciphertext after the members' maintenance job: %s", after)
	if after["db"] > 0 {
		t.Errorf("the erased record's ciphertext is still in %d member database file(s) after compaction and defragmentation", after["db"])
	}

	snaps := 0
	for _, m := range cl.Members {
		for _, f := range dataFiles(t, m.DataDir) {
			if strings.HasSuffix(f, ".snap") {
				snaps++
			}
		}
	}
	if snaps == 0 {
		t.Error("no member wrote a raft snapshot: the scan did not cover one")
	}
	var needles [][]byte
	for _, addr := range customers {
		for _, form := range []string{addr, strings.ToUpper(addr), strings.ToLower(addr)} {
			needles = append(needles, []byte(form))
			needles = append(needles, base64Forms(form)...)
		}
	}
	if found := countIn(t, cl, needles); len(found) > 0 {
		t.Errorf("customer addresses found in the members' data directories: %s", found)
	}
}

// hits counts, per kind of file (db, wal, snap), the files holding a
// needle.
type hits map[string]int

func (h hits) String() string {
	if len(h) == 0 {
		return "in no file"
	}
	var parts []string
	for _, k := range []string{"db", "wal", "snap", "other"} {
		if h[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d file(s)", k, h[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// countIn scans every file of every member's data directory for any of
// the needles, and logs which files hold one.
func countIn(t *testing.T, cl *etcdtest.Cluster, needles [][]byte) hits {
	t.Helper()
	h := hits{}
	for _, m := range cl.Members {
		for _, f := range dataFiles(t, m.DataDir) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(data, n) {
					h[fileKind(f)]++
					t.Logf("found in %s", strings.TrimPrefix(f, filepath.Dir(m.DataDir)+"/"))
					break
				}
			}
		}
	}
	return h
}

// base64Forms are the parts of s's standard and URL base64 encodings that
// do not depend on where s starts in the encoded stream: s is encoded
// after 0, 1 and 2 bytes of padding, and the characters that mix padding
// or what follows are cut off.
func base64Forms(s string) [][]byte {
	var out [][]byte
	for pad := range 3 {
		in := append(make([]byte, pad), s...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(in)
			start := 0
			if pad > 0 {
				start = 4
			}
			end := (len(in) / 3) * 4 // whole groups only
			if end-start >= 8 {
				out = append(out, []byte(e[start:end]))
			}
		}
	}
	return out
}
