package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// testMap is a token map on a bbolt file, closed with the test.
type testMap struct {
	*tokenize.Map
	db   *Store
	path string
	keys *vault.Keyring
}

func openTestMap(t testing.TB) *testMap {
	t.Helper()
	return reopenTestMap(t, filepath.Join(t.TempDir(), "map.db"), storetest.Keyring())
}

func reopenTestMap(t testing.TB, path string, keys *vault.Keyring) *testMap {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tokenize.NewMap(db, keys, tokenize.Options{Tenant: "test",
		Format: tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}})
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMap{Map: m, db: db, path: path, keys: keys}
	t.Cleanup(tm.close)
	return tm
}

func (tm *testMap) close() {
	tm.Map.Close()
	tm.db.Close()
}
