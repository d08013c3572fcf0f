package tokenize_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

var testFormat = tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func testKeyring(recordVersions int) *vault.Keyring {
	rec := map[uint32][]byte{}
	for v := 1; v <= recordVersions; v++ {
		rec[uint32(v)] = randomKey()
	}
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken:  {1: randomKey()},
		vault.PurposeRecord: rec,
	})
}

// testMap is a map on a real bbolt file, as the proxy runs it.
type testMap struct {
	*tokenize.Map
	store *boltstore.Store
	path  string
	keys  *vault.Keyring
}

func openTestMap(t testing.TB, opts tokenize.Options) *testMap {
	t.Helper()
	path := filepath.Join(t.TempDir(), "map.db")
	return reopenTestMap(t, path, testKeyring(1), opts)
}

func reopenTestMap(t testing.TB, path string, keys *vault.Keyring, opts tokenize.Options) *testMap {
	t.Helper()
	store, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Format == (tokenize.Format{}) {
		opts.Format = testFormat
	}
	if opts.Tenant == "" {
		opts.Tenant = "test"
	}
	m, err := tokenize.NewMap(store, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMap{Map: m, store: store, path: path, keys: keys}
	t.Cleanup(tm.close)
	return tm
}

func (tm *testMap) close() {
	tm.Map.Close()
	tm.store.Close()
}

// stored returns a token's stored value.
func (tm *testMap) stored(t testing.TB, local string) []byte {
	t.Helper()
	var v []byte
	err := tm.store.View(context.Background(), func(tx tokenize.ReadTx) error {
		raw, err := tx.Token(local)
		v = append([]byte(nil), raw...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
