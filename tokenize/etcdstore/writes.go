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
	// unseen are the prefixes seen/<token>/ of erased tokens: every
	// node's last-seen time of each, deleted as a range (seen.go).
	unseen map[string]bool
}

func newWrites() *writes {
	return &writes{puts: map[string][]byte{}, deletes: map[string]bool{}, unseen: map[string]bool{}}
}

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
	for _, prefix := range slices.Sorted(maps.Keys(w.unseen)) {
		ops = append(ops, clientv3.OpDelete(prefix, clientv3.WithPrefix()))
	}
	return ops
}

// keys are what the commit writes, for the group commit's rule that one
// Txn writes a key once: the keys put, and for last-seen times (put, or
// deleted as a range) their token's prefix seen/<token>/, so that an
// erasure's range delete never shares a Txn with a put inside it, which
// etcd refuses.
func (w *writes) keys(l layout) []string {
	out := slices.Collect(maps.Keys(w.puts))
	for key := range w.puts {
		if rest, ok := strings.CutPrefix(key, l.seen); ok {
			local, _, _ := strings.Cut(rest, "/")
			out = append(out, l.seenPrefix(local))
		}
	}
	return append(out, slices.Collect(maps.Keys(w.unseen))...)
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
