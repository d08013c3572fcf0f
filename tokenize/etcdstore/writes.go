package etcdstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// writes buffers a transaction's writes until its commit.
type writes struct {
	puts    map[string][]byte // tokens and meta, by key
	appends [][]byte          // new outbox entries, in order
	deletes map[string]bool   // outbox keys
}

func newWrites() *writes { return &writes{puts: map[string][]byte{}, deletes: map[string]bool{}} }

// put keeps a copy: the caller may reuse its slice once the call returns.
func (w *writes) put(key string, v []byte) { w.puts[key] = slices.Clone(v) }

// ops returns the commit's operations. New outbox entries get keys under
// this node's outbox that are unique without any coordination: a random
// transaction id (64 bits) and the entry's index in the transaction.
func (w *writes) ops(l layout, tx *txn) []clientv3.Op {
	var ops []clientv3.Op
	for _, key := range slices.Sorted(maps.Keys(w.puts)) {
		ops = append(ops, clientv3.OpPut(key, string(w.puts[key])))
	}
	if len(w.appends) > 0 {
		id := newTxnID()
		for i, v := range w.appends {
			ops = append(ops, clientv3.OpPut(l.outbox+entryName(id, i), string(v)))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(w.deletes)) {
		ops = append(ops, clientv3.OpDelete(key))
	}
	return ops
}

// tokensAfter returns the buffered token writes after the local part
// after, in order, for a scan to merge with what it reads.
func (w *writes) tokensAfter(l layout, after string) []string {
	var out []string
	for key := range w.puts {
		if local, ok := strings.CutPrefix(key, l.tokens); ok && local > after {
			out = append(out, local)
		}
	}
	slices.Sort(out)
	return out
}

func newTxnID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// entryName names the index-th outbox entry of a transaction. The index
// is zero-padded so that a transaction's entries sort in append order.
func entryName(txnID string, index int) string { return fmt.Sprintf("%s-%04d", txnID, index) }
