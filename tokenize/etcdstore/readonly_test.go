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

// TestReadOnlyIsNoNode: a read-only store (an audit verify) reads the map
// but registers no node, so it never collides with the node_id of this
// host's serving node and never claims a dead node's outbox; it cannot
// write.
func TestReadOnlyIsNoNode(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	prefix := freshPrefix()
	node := openStore(t, c, prefix, "n1")
	if err := node.Update(ctx, func(tx tokenize.Tx) error { return tx.PutToken("t1-a", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	r, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix, Tenant: "test",
		NodeID: "n1", DialTimeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open with a serving node's id: %v", err)
	}
	defer r.Close()
	var got []byte
	if err := r.View(ctx, func(tx tokenize.ReadTx) error { v, err := tx.Token("t1-a"); got = v; return err }); err != nil || string(got) != "v" {
		t.Fatalf("read-only View = %q, %v", got, err)
	}
	if err := r.Update(ctx, func(tx tokenize.Tx) error { return nil }); !errors.Is(err, tokenize.ErrStore) {
		t.Fatalf("read-only Update = %v, want ErrStore", err)
	}
	resp, err := c.Client(t).Get(ctx, prefix+"test/nodes/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("nodes registered: %v, %v; want only n1's", resp, err)
	}
}
