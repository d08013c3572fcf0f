package etcdstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestPeers: each node's peer entry is read by every node, lives under
// the node's lease (gone once the node closes), and a read-only reader
// publishes none.
func TestPeers(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	prefix := freshPrefix()
	n1, n2 := openStore(t, c, prefix, "n1"), openStore(t, c, prefix, "n2")
	for _, n := range []*etcdstore.Store{n1, n2} {
		if err := n.PutPeer(ctx, []byte(`{"url":"https://`+n.NodeID()+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := n1.Peers(ctx)
	if err != nil || len(got) != 2 || string(got["n2"]) != `{"url":"https://n2"}` {
		t.Fatalf("Peers on n1 = %q, %v; want both entries", got, err)
	}
	n2.Close()
	if got, err = n1.Peers(ctx); err != nil || len(got) != 1 || got["n1"] == nil {
		t.Fatalf("Peers after n2 closed = %q, %v; want n1's only", got, err)
	}

	// n1's lease ends under it (etcd away longer than the TTL): the
	// entry went with it, and comes back when n1 registers again.
	cli := c.Client(t)
	resp, err := cli.Get(ctx, prefix+"test/nodes/n1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("n1's registration: %v, %v", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err = n1.Peers(ctx)
		if err == nil && string(got["n1"]) == `{"url":"https://n1"}` {
			if r, _ := cli.Get(ctx, prefix+"test/peers/n1"); len(r.Kvs) == 1 && r.Kvs[0].Lease != resp.Kvs[0].Lease {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1's peer entry not published again under its new lease: %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix, Tenant: "test",
		NodeID: "reader", DialTimeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.PutPeer(ctx, []byte(`{}`)); !errors.Is(err, tokenize.ErrStore) {
		t.Fatalf("read-only PutPeer = %v, want ErrStore", err)
	}
}
