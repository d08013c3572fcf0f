package etcdtest_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
)

// TestClusterSurvivesLeaderKill: a write committed before the leader is
// killed is read after a new leader is elected, writes go on, and the
// killed member rejoins with the data.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(t, 5*time.Second)
	c.Members[leader].Kill()
	next := c.Leader(t, 10*time.Second)
	if next == leader {
		t.Fatalf("killed member %d still leads", leader)
	}
	if _, err := cli.Put(ctx, "k2", "after"); err != nil {
		t.Fatal(err)
	}
	c.Restart(t, leader)
	st, err := cli.Status(ctx, c.Members[leader].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Fatalf("Get(k) = %v, %v", resp, err)
	}
	t.Logf("restarted member %d at revision %d", leader, st.Header.Revision)
}

// TestTLSCluster: a TLS cluster serves a client with a certificate from
// its CA, refuses one without, and the etcdctl built from the same release
// talks to it with the root certificate.
func TestTLSCluster(t *testing.T) {
	ca := etcdtest.NewCA(t, "test-ca")
	c := etcdtest.StartWith(t, etcdtest.Options{TLS: ca})
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://127.0.0.1:") {
			t.Fatalf("endpoint %s: want https on loopback", ep)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Client(t).Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with the root certificate: %v", err)
	}
	anon, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second,
		TLS: ca.ClientTLS(t, "")})
	if err == nil {
		defer anon.Close()
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = anon.Get(actx, "k")
		acancel()
	}
	if err == nil {
		t.Fatal("a client without a certificate read from a client-cert-auth cluster")
	}
	cert, key := ca.Issue(t, etcdtest.RootCN)
	out, err := exec.Command(etcdtest.Etcdctl(t), "--endpoints", strings.Join(c.Endpoints(), ","),
		"--cacert", ca.CertFile, "--cert", cert, "--key", key, "get", "k", "--print-value-only").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "v" {
		t.Fatalf("etcdctl get k: %v\n%s", err, out)
	}
}
