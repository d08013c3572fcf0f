package etcdstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestLastSeenPerNode: two nodes use one token; each writes its own time
// under seen/<token>/<node>, the record is never rewritten (its key keeps
// its first revision), a map on either node reads the latest time, and
// the erasure deletes every node's time with the record's tombstone.
func TestLastSeenPerNode(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func(at time.Time) func() time.Time { return func() time.Time { return at } }
	s1, s2 := openStore(t, c, prefix, "n1"), openStore(t, c, prefix, "n2")
	m1 := newMapOpts(t, s1, keys, tokenize.Options{Audit: &storetest.Auditor{}, Now: clock(t0)})
	iss, err := m1.Tokenize(ctx, "jane@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	m1.Close()
	uses := map[string]time.Time{"n1": t0.Add(2 * time.Hour), "n2": t0.Add(5 * time.Hour)}
	// n1 first: a node whose use is older than the latest a node wrote
	// writes nothing.
	for i, s := range []tokenize.Store{s1, s2} {
		node := []string{"n1", "n2"}[i]
		m := newMapOpts(t, s, keys, tokenize.Options{Audit: &storetest.Auditor{}, Now: clock(uses[node])})
		if _, err := m.Resolve(ctx, iss.Address); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil { // the flush
			t.Fatal(err)
		}
	}

	cli := c.Client(t)
	rec, err := cli.Get(ctx, prefix+"test/t/"+iss.Local)
	if err != nil || len(rec.Kvs) != 1 || rec.Kvs[0].ModRevision != rec.Kvs[0].CreateRevision || rec.Kvs[0].Version != 1 {
		t.Fatalf("the record was rewritten by the uses: %+v, %v", rec.Kvs, err)
	}
	seen, err := cli.Get(ctx, prefix+"test/seen/"+iss.Local+"/", clientv3.WithPrefix())
	if err != nil || len(seen.Kvs) != 2 {
		t.Fatalf("seen keys: %+v, %v; want one per node", seen.Kvs, err)
	}
	for _, kv := range seen.Kvs {
		node := string(kv.Key[len(prefix+"test/seen/"+iss.Local+"/"):])
		if string(kv.Value) != strconv.FormatInt(uses[node].Unix(), 10) {
			t.Errorf("%s = %s, want %d", kv.Key, kv.Value, uses[node].Unix())
		}
	}
	m := newMapOpts(t, s1, keys, tokenize.Options{Audit: &storetest.Auditor{}, Now: clock(t0.Add(6 * time.Hour))})
	if e, err := m.Inspect(ctx, iss.Address); err != nil || !e.LastSeen.Equal(uses["n2"]) {
		t.Fatalf("last seen on n1 = %v, %v; want n2's use %v", e.LastSeen, err, uses["n2"])
	}

	// A copy out of the cluster (store migrate --from etcd) folds the
	// nodes' times into the records: the single node keeps them there.
	mem := storetest.NewMem()
	if _, err := tokenize.Copy(ctx, s1, mem); err != nil {
		t.Fatal(err)
	}
	one := newMapOpts(t, mem, keys, tokenize.Options{Audit: &storetest.Auditor{}})
	if e, err := one.Inspect(ctx, iss.Address); err != nil || !e.LastSeen.Equal(uses["n2"]) {
		t.Fatalf("last seen after a copy to one node = %v, %v; want %v", e.LastSeen, err, uses["n2"])
	}
	if _, err := m.EraseSubject(ctx, "jane@example.com"); err != nil && !errors.Is(err, tokenize.ErrScrubBusy) {
		t.Fatal(err)
	}
	if seen, err = cli.Get(ctx, prefix+"test/seen/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || seen.Count != 0 {
		t.Fatalf("%d seen keys left after the erasure (%v), want 0", seen.Count, err)
	}
}
