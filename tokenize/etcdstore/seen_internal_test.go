package etcdstore

import (
	"slices"
	"testing"
)

// TestSeenWriteKeys: a commit that puts a node's last-seen time and one
// that erases the token (a range delete of every node's) both name the
// token's seen/ prefix among their keys, so the group commit never puts
// them in one Txn, which etcd refuses (a put inside a deleted range).
func TestSeenWriteKeys(t *testing.T) {
	l := newLayout(Options{Prefix: "tp/", Tenant: "x", NodeID: "n1"})
	s := &Store{keys: l, opts: Options{NodeID: "n1"}}
	put := &txn{s: s, write: newWrites()}
	put.PutSeen("t1-abc", 42)
	erase := &txn{s: s, write: newWrites()}
	erase.DeleteSeen("t1-abc")
	want := "tp/x/seen/t1-abc/"
	if k := put.write.keys(l); !slices.Contains(k, want) || !slices.Contains(k, want+"n1") {
		t.Errorf("put's keys %v, want %s and its node key", k, want)
	}
	if k := erase.write.keys(l); !slices.Contains(k, want) {
		t.Errorf("erase's keys %v, want %s", k, want)
	}
	// An erase after a put in one transaction drops the put.
	put.DeleteSeen("t1-abc")
	if _, ok := put.write.puts[want+"n1"]; ok {
		t.Error("DeleteSeen left the transaction's own put")
	}
}
