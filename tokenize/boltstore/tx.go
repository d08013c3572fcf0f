package boltstore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// readTx implements tokenize.ReadTx on a bbolt transaction.
type readTx struct{ tx *bolt.Tx }

func (r readTx) Token(local string) ([]byte, error) {
	return r.tx.Bucket(bucketTokens).Get([]byte(local)), nil
}

func (r readTx) Tokens(after string, fn func(string, []byte) (bool, error)) error {
	c := r.tx.Bucket(bucketTokens).Cursor()
	k, v := c.First()
	if after != "" {
		if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		more, err := fn(string(k), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Outbox refs are the hex form of the bucket keys: an 8-byte sequence, so
// that refs sort in commit order, and 8 random bytes, so that a restored
// backup, whose sequence starts again below refs the trail already holds,
// never reuses one.
func (r readTx) Outbox(limit int, fn func(string, []byte) error) error {
	c := r.tx.Bucket(bucketAudit).Cursor()
	n := 0
	for k, v := c.First(); k != nil && n < limit; k, v = c.Next() {
		if err := fn(hex.EncodeToString(k), v); err != nil {
			return err
		}
		n++
	}
	return nil
}

func (r readTx) OutboxLen() (int, error) {
	return r.tx.Bucket(bucketAudit).Stats().KeyN, nil
}

func (r readTx) Meta(name string) ([]byte, error) {
	return r.tx.Bucket(bucketMeta).Get(metaKey(name)), nil
}

// metaKey keeps the map's own meta values apart from the store's (schema,
// wrapped keys). records_min_key_version predates the prefix and keeps
// its name, so existing files read as before.
func metaKey(name string) []byte {
	if name == "records_min_key_version" {
		return []byte(name)
	}
	return []byte("map/" + name)
}

// writeTx implements tokenize.Tx.
type writeTx struct{ readTx }

func (w writeTx) PutToken(local string, value []byte) error {
	return w.tx.Bucket(bucketTokens).Put([]byte(local), value)
}

func (w writeTx) AppendOutbox(value []byte) error {
	b := w.tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := make([]byte, 16)
	binary.BigEndian.PutUint64(key, seq)
	if _, err := rand.Read(key[8:]); err != nil {
		return err
	}
	return b.Put(key, bytes.Clone(value))
}

func (w writeTx) DeleteOutbox(refs []string) error {
	b := w.tx.Bucket(bucketAudit)
	for _, ref := range refs {
		k, err := hex.DecodeString(ref)
		if err != nil {
			return fmt.Errorf("outbox ref %q: %w", ref, err)
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (w writeTx) PutMeta(name string, value []byte) error {
	return w.tx.Bucket(bucketMeta).Put(metaKey(name), value)
}
