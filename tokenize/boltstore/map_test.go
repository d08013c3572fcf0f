package boltstore

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

func TestSchemaTooNew(t *testing.T) {
	m := openTestMap(t)
	m.db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	m.close()
	_, err := Open(m.path)
	if !errors.Is(err, tokenize.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("Open = %v, want ErrSchemaTooNew naming the version", err)
	}
}
