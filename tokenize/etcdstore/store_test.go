package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestStore holds the tests that share one healthy cluster.
func TestStore(t *testing.T) {
	c := etcdtest.Start(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *etcdtest.Cluster)
	}{
		{"update-reads-own-writes", testOwnWrites},
		{"conflicting-updates-serialize", testConflicts},
		{"two-nodes-one-token", testTwoNodesOneToken},
		{"erasure-reaches-other-node", testErasureWatch},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
	}
}

// testOwnWrites: inside Update, Token and Tokens see the transaction's
// buffered writes merged with the snapshot.
func testOwnWrites(t *testing.T, c *etcdtest.Cluster) {
	s := openStore(t, c, freshPrefix(), "n1")
	ctx := context.Background()
	put := func(tx tokenize.Tx) error {
		tx.PutToken("a", []byte("1"))
		return tx.PutToken("c", []byte("3"))
	}
	if err := s.Update(ctx, put); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx tokenize.Tx) error {
		tx.PutToken("b", []byte("2"))
		tx.PutToken("c", []byte("3'"))
		if v, _ := tx.Token("b"); string(v) != "2" {
			return fmt.Errorf("Token(b) = %q inside the writing Update", v)
		}
		var got []string
		tx.Tokens("", func(k string, v []byte) (bool, error) { got = append(got, k+"="+string(v)); return true, nil })
		if want := []string{"a=1", "b=2", "c=3'"}; !slices.Equal(got, want) {
			return fmt.Errorf("Tokens = %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testConflicts: read-modify-write Updates from two stores (two nodes)
// lose no increment: a conflicting commit runs again.
func testConflicts(t *testing.T, c *etcdtest.Cluster) {
	prefix := freshPrefix()
	stores := []*etcdstore.Store{openStore(t, c, prefix, "n1"), openStore(t, c, prefix, "n2")}
	const each = 20
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			for range each {
				err := s.Update(context.Background(), func(tx tokenize.Tx) error {
					v, err := tx.Meta("n")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					return tx.PutMeta("n", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	stores[0].View(context.Background(), func(tx tokenize.ReadTx) error {
		if v, _ := tx.Meta("n"); string(v) != strconv.Itoa(8*each) {
			t.Errorf("counter = %s after %d increments", v, 8*each)
		}
		return nil
	})
}

// testTwoNodesOneToken: two nodes see one new address at once; it gets
// one token and exactly one creation record, on one node's outbox.
func testTwoNodesOneToken(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	audits := []*storetest.Auditor{{}, {}}
	maps := []*tokenize.Map{
		newMap(t, openStore(t, c, prefix, "n1"), keys, audits[0]),
		newMap(t, openStore(t, c, prefix, "n2"), keys, audits[1]),
	}
	toks := make([]string, 16)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iss, err := maps[i%2].Tokenize(ctx, "same@example.com", "")
			if err != nil {
				t.Error(err)
			}
			toks[i] = iss.Address
		}()
	}
	wg.Wait()
	if toks[0] == "" || slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
		t.Fatalf("concurrent creation on two nodes gave tokens %v", toks)
	}
	var created []string
	for i, m := range maps {
		if err := m.SyncAudit(ctx); err != nil {
			t.Fatal(err)
		}
		created = append(created, audits[i].Tokens(tokenize.EventCreated)...)
	}
	if len(created) != 1 || created[0] != toks[0] {
		t.Fatalf("creation records %v over both nodes, want one for %s", created, toks[0])
	}
}

// testErasureWatch: an erasure on one node reaches the other's address
// cache through the watch: the address gets a new token there.
func testErasureWatch(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	prefix := freshPrefix()
	keys := storetest.Keyring()
	a := newMap(t, openStore(t, c, prefix, "n1"), keys, nil)
	b := newMap(t, openStore(t, c, prefix, "n2"), keys, nil)
	first, err := a.Tokenize(ctx, "gone@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.EraseSubject(ctx, "gone@example.com"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for {
		again, err := a.Tokenize(ctx, "gone@example.com", "")
		if err != nil {
			t.Fatal(err)
		}
		if again.Address != first.Address {
			t.Logf("erasure reached the other node's cache after %v", time.Since(begin))
			break
		}
		if time.Since(begin) > 2*time.Second {
			t.Fatalf("node A still gives the erased token %s after %v", first.Address, time.Since(begin))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Resolve(ctx, first.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("erased token resolves on the other node: %v", err)
	}
}

// TestOpenUnreachable: a cluster that cannot be reached is ErrStore
// naming the endpoints, within the dial timeout.
func TestOpenUnreachable(t *testing.T) {
	ep := "http://127.0.0.1:1" // nothing listens on port 1
	begin := time.Now()
	_, err := etcdstore.Open(context.Background(), etcdstore.Options{
		Endpoints: []string{ep}, Tenant: "test", NodeID: "n1", DialTimeout: 500 * time.Millisecond,
	})
	if !errors.Is(err, tokenize.ErrStore) || !strings.Contains(err.Error(), ep) {
		t.Fatalf("Open = %v; want ErrStore naming %s", err, ep)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("Open took %v to fail", d)
	}
	_, err = etcdstore.Open(context.Background(), etcdstore.Options{
		Endpoints: []string{"http://10.0.0.1:2379"}, Tenant: "test", NodeID: "n1",
	})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Open of a plain-text remote endpoint = %v; want a refusal", err)
	}
}
