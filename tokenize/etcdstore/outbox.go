package etcdstore

import (
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// An outbox entry's key is <outbox>/<node>/<txn id>-<index> (writes.go);
// its ref is <create revision, 20 digits>-<txn id>-<index>. The create
// revision is the commit's place in the cluster's history, so refs sort in
// commit order with no counter to share between a node's concurrent
// transactions; the random transaction id keeps a ref unique after a
// snapshot restore hands out the same revisions again.

// Outbox implements tokenize.ReadTx: this node's entries, in commit
// order. Entries appended by the same transaction have no ref yet and are
// not listed.
func (t *txn) Outbox(limit int, fn func(ref string, value []byte) error) error {
	if limit <= 0 {
		return nil
	}
	// Entries of one commit share a revision, and one commit holds at
	// most MaxTxnOps: reading that many more than limit gets all of those
	// sharing the last revision, to order them by index.
	resp, err := t.get(t.s.keys.outbox, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend),
		clientv3.WithLimit(int64(limit+t.s.opts.MaxTxnOps)))
	if err != nil {
		return err
	}
	type entry struct {
		ref   string
		value []byte
	}
	var entries []entry
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		if t.write != nil && t.write.deletes[key] {
			continue
		}
		ref := fmt.Sprintf("%020d-%s", kv.CreateRevision, strings.TrimPrefix(key, t.s.keys.outbox))
		entries = append(entries, entry{ref, kv.Value})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.ref, b.ref) })
	for _, e := range entries[:min(limit, len(entries))] {
		if err := fn(e.ref, e.value); err != nil {
			return err
		}
	}
	return nil
}

// OutboxLen implements tokenize.ReadTx.
func (t *txn) OutboxLen() (int, error) {
	resp, err := t.get(t.s.keys.outbox, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	n := int(resp.Count)
	if t.write == nil {
		return n, nil
	}
	n += len(t.write.appends)
	if len(t.write.deletes) > 0 {
		keys, err := t.get(t.s.keys.outbox, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return 0, err
		}
		for _, kv := range keys.Kvs {
			if t.write.deletes[string(kv.Key)] {
				n--
			}
		}
	}
	return n, nil
}

// AppendOutbox implements tokenize.Tx.
func (t *txn) AppendOutbox(v []byte) error {
	t.write.appends = append(t.write.appends, slices.Clone(v))
	return nil
}

// DeleteOutbox implements tokenize.Tx. Deleting an entry that is gone
// already is no error: a retried delete after a delivery finds it so.
func (t *txn) DeleteOutbox(refs []string) error {
	for _, ref := range refs {
		_, name, ok := strings.Cut(ref, "-")
		if !ok || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("%w: %q is not an outbox ref", tokenize.ErrStore, ref)
		}
		t.write.deletes[t.s.keys.outbox+name] = true
	}
	return nil
}
