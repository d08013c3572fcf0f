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

// Outbox implements tokenize.ReadTx: this node's entries while it is
// registered, and those of the dead nodes' outboxes it took over
// (takeover.go), in commit order. Entries appended by the same
// transaction have no ref yet and are not listed.
func (t *txn) Outbox(limit int, fn func(ref string, value []byte) error) error {
	if limit <= 0 {
		return nil
	}
	prefixes, err := t.outboxes()
	if err != nil {
		return err
	}
	var entries []outboxEntry
	for _, prefix := range prefixes {
		got, err := t.outboxOf(prefix, limit)
		if err != nil {
			return err
		}
		entries = append(entries, got...)
	}
	slices.SortFunc(entries, func(a, b outboxEntry) int { return strings.Compare(a.ref, b.ref) })
	for _, e := range entries[:min(limit, len(entries))] {
		if err := fn(e.ref, e.value); err != nil {
			return err
		}
	}
	return nil
}

type outboxEntry struct {
	ref   string
	value []byte
}

// outboxes returns the outbox prefixes this node reads at the snapshot:
// its own while nodes/<id> is held by its lease (after a lost lease,
// another node may have taken the outbox over), and every outbox whose
// takeover/<node> its lease holds. Reading the claims at the snapshot,
// rather than from memory, keeps a claim lost with the lease from being
// read on.
func (t *txn) outboxes() ([]string, error) {
	lease := int64(t.s.lease())
	if lease == 0 {
		return nil, nil
	}
	var out []string
	// Not WithKeysOnly: etcd then leaves the lease out of the reply.
	resp, err := t.get(t.s.keys.node(t.s.opts.NodeID))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 1 && resp.Kvs[0].Lease == lease {
		out = append(out, t.s.keys.outbox)
	}
	resp, err = t.get(t.s.keys.takeovers, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	for _, kv := range resp.Kvs {
		if kv.Lease == lease {
			out = append(out, t.s.keys.nodeOutbox(strings.TrimPrefix(string(kv.Key), t.s.keys.takeovers)))
		}
	}
	return out, nil
}

// outboxOf returns the first entries of one node's outbox, at least limit
// of them when it has as many.
func (t *txn) outboxOf(prefix string, limit int) ([]outboxEntry, error) {
	// Entries of one commit share a revision, and one commit holds at
	// most MaxTxnOps: reading that many more than limit gets all of those
	// sharing the last revision, to order them by index. etcd reads the
	// whole prefix for a range sorted other than by key and applies the
	// limit after sorting (server/etcdserver/txn/range.go, rangeLimit), so
	// this costs the whole outbox: the drain reads many entries per call
	// for that reason (tokenize's outboxBatch).
	resp, err := t.get(prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend),
		clientv3.WithLimit(int64(limit+t.s.opts.MaxTxnOps)))
	if err != nil {
		return nil, err
	}
	foreign := prefix != t.s.keys.outbox
	var entries []outboxEntry
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		if t.write != nil && t.write.deletes[key] {
			continue
		}
		name := strings.TrimPrefix(key, prefix)
		if foreign {
			t.s.noteForeign(name, key)
		}
		entries = append(entries, outboxEntry{fmt.Sprintf("%020d-%s", kv.CreateRevision, name), kv.Value})
	}
	return entries, nil
}

// OutboxLen implements tokenize.ReadTx: the entries Outbox lists.
func (t *txn) OutboxLen() (int, error) {
	prefixes, err := t.outboxes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, prefix := range prefixes {
		c, err := t.outboxLenOf(prefix)
		if err != nil {
			return 0, err
		}
		n += c
	}
	if t.write != nil {
		n += len(t.write.appends)
	}
	return n, nil
}

func (t *txn) outboxLenOf(prefix string) (int, error) {
	resp, err := t.get(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	n := int(resp.Count)
	if t.write == nil || len(t.write.deletes) == 0 {
		return n, nil
	}
	keys, err := t.get(prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, err
	}
	for _, kv := range keys.Kvs {
		if t.write.deletes[string(kv.Key)] {
			n--
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
// already is no error: a retried delete after a delivery finds it so. An
// entry of a taken-over outbox is found by the name Outbox listed it
// under.
func (t *txn) DeleteOutbox(refs []string) error {
	for _, ref := range refs {
		_, name, ok := strings.Cut(ref, "-")
		if !ok || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("%w: %q is not an outbox ref", tokenize.ErrStore, ref)
		}
		key, ok := t.s.foreignKey(name)
		if !ok {
			key = t.s.keys.outbox + name
		}
		t.write.deletes[key] = true
	}
	return nil
}
