package rewrite

import (
	"bytes"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// This file is the only place the rewriter's tests build a token map: when
// the map's construction changes, only newTestMap changes with it.

// testFormat is the token format of the tests' map: the golden files hold
// its tokens.
var testFormat = tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}

// fixedKeyring makes tokens deterministic, so golden files are stable.
func fixedKeyring() *vault.Keyring {
	k := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: k(1)}, vault.PurposeRecord: {1: k(2)},
	})
}

// newTestMap opens a fresh token map with fixedKeyring's keys, tenant
// "test" and testFormat, on the in-memory store, closed when the test
// ends.
func newTestMap(t testing.TB) *tokenize.Map {
	t.Helper()
	db := storetest.NewMem()
	m, err := tokenize.NewMap(db, fixedKeyring(), tokenize.Options{Format: testFormat, Tenant: "test"})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		db.Close()
	})
	return m
}
