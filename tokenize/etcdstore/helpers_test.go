package etcdstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// freshPrefix gives each test its own key space on a shared cluster.
func freshPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b) + "/"
}

// openStore opens a store on the cluster that the test closes.
func openStore(t testing.TB, c *etcdtest.Cluster, prefix, node string) *etcdstore.Store {
	t.Helper()
	return openStoreOpts(t, c, etcdstore.Options{Prefix: prefix, NodeID: node})
}

// openStoreOpts is openStore with more options (timeouts).
func openStoreOpts(t testing.TB, c *etcdtest.Cluster, opts etcdstore.Options) *etcdstore.Store {
	t.Helper()
	opts.Endpoints, opts.Tenant, opts.DialTimeout = c.Endpoints(), "test", 5*time.Second
	s, err := etcdstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var format = tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}

// newMap is a token map on s with keys and an auditor.
func newMap(t testing.TB, s tokenize.Store, keys *vault.Keyring, a tokenize.Auditor) *tokenize.Map {
	t.Helper()
	return newMapOpts(t, s, keys, tokenize.Options{Audit: a})
}

// newMapOpts is newMap with more options; format and tenant are set.
func newMapOpts(t testing.TB, s tokenize.Store, keys *vault.Keyring, opts tokenize.Options) *tokenize.Map {
	t.Helper()
	opts.Format, opts.Tenant = format, "test"
	m, err := tokenize.NewMap(s, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
