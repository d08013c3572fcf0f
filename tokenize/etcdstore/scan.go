package etcdstore

import (
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// scanPage is how many tokens one Get of a scan reads: a page of records
// (~150 bytes each) is well under etcd's request size limit.
const scanPage = 256

// Tokens implements tokenize.ReadTx: pages of the snapshot, merged in a
// write transaction with its own buffered token writes. The tokens visited
// are noted for the commit's compares (doc.go).
func (t *txn) Tokens(after string, fn func(string, []byte) (bool, error)) error {
	var pending []string
	if t.write != nil {
		pending = t.write.tokensAfter(t.s.keys, after)
	}
	// emit calls fn for the buffered writes before local (all of them
	// when local is ""), dropping one equal to it: the buffer wins.
	emit := func(local string) (bool, error) {
		for len(pending) > 0 && (local == "" || pending[0] <= local) {
			p := pending[0]
			pending = pending[1:]
			if p == local {
				break
			}
			if more, err := fn(p, t.write.puts[t.s.keys.token(p)]); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	more, err := t.scan(after, func(local string, v []byte) (bool, error) {
		if more, err := emit(local); err != nil || !more {
			return false, err
		}
		if t.write != nil {
			if b, ok := t.write.puts[t.s.keys.token(local)]; ok {
				v = b
			}
		}
		return fn(local, v)
	})
	if err != nil || !more {
		return err
	}
	_, err = emit("")
	return err
}

// scan reads the snapshot's tokens after the local part after, page by
// page, until fn returns false or an error. It reports whether fn wanted
// more at the end.
func (t *txn) scan(after string, fn func(string, []byte) (bool, error)) (bool, error) {
	start, end := t.s.keys.token(after)+"\x00", clientv3.GetPrefixRangeEnd(t.s.keys.tokens)
	for {
		resp, err := t.get(start, clientv3.WithRange(end), clientv3.WithLimit(scanPage))
		if err != nil {
			return false, err
		}
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			if t.write != nil {
				if t.scanned == nil {
					t.scanned = map[string]int64{}
				}
				t.scanned[key] = kv.ModRevision
			}
			if more, err := fn(strings.TrimPrefix(key, t.s.keys.tokens), kv.Value); err != nil || !more {
				return false, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return true, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
