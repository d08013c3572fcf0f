package etcdstore

import (
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Last-seen times live apart from the records (tokenize.SeenTx), under
// seen/<token>/<node>: each node writes only its own keys, so the nodes'
// batched flushes never conflict and never rewrite a record (one new
// revision of its ciphertext per flush, and a cache drop on every other
// node through the watch on t/, before). The token comes first in the
// key so that one range read gives its times over the nodes (the latest
// wins) and one range delete erases them with the token. A value is the
// time in unix seconds, in decimal.

var _ tokenize.SeenTx = (*txn)(nil)

func (l layout) seenPrefix(local string) string { return l.seen + local + "/" }

// Seen implements tokenize.SeenTx: the latest time over the nodes at the
// snapshot, with this transaction's own write. The keys are not compared
// at commit (doc.go).
func (t *txn) Seen(local string) (int64, error) {
	prefix := t.s.keys.seenPrefix(local)
	var latest int64
	if t.write != nil {
		if t.write.unseen[prefix] {
			return 0, nil
		}
		if v, ok := t.write.puts[prefix+t.s.opts.NodeID]; ok {
			latest = parseSeen(v)
		}
	}
	resp, err := t.get(prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	for _, kv := range resp.Kvs {
		latest = max(latest, parseSeen(kv.Value))
	}
	return latest, nil
}

// PutSeen implements tokenize.SeenTx: this node's time of the token.
func (t *txn) PutSeen(local string, at int64) error {
	prefix := t.s.keys.seenPrefix(local)
	delete(t.write.unseen, prefix)
	t.write.put(prefix+t.s.opts.NodeID, []byte(strconv.FormatInt(at, 10)))
	return nil
}

// DeleteSeen implements tokenize.SeenTx: every node's time of the token.
func (t *txn) DeleteSeen(local string) error {
	prefix := t.s.keys.seenPrefix(local)
	for key := range t.write.puts {
		if strings.HasPrefix(key, prefix) {
			delete(t.write.puts, key)
		}
	}
	t.write.unseen[prefix] = true
	return nil
}

// parseSeen reads a stored time; a damaged value counts as never seen
// (the record's own time stands), not as an error that would stop reads.
func parseSeen(v []byte) int64 {
	at, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0
	}
	return at
}
