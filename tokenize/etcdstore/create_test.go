package etcdstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestCreateToken: the create-if-absent path (tokenize.Creator) on a real
// cluster.
func TestCreateToken(t *testing.T) {
	c := etcdtest.Start(t)
	t.Run("once", func(t *testing.T) { testCreateOnce(t, c) })
	t.Run("absent", func(t *testing.T) { testCreateAbsent(t, c) })
	t.Run("read-only", func(t *testing.T) { testCreateReadOnly(t, c) })
	t.Run("token-key-rotation", func(t *testing.T) { testCreateAfterRotation(t, c) })
	t.Run("two-nodes-same-addresses", func(t *testing.T) { testCreateTwoNodes(t, c) })
}

// testCreateOnce: the first CreateToken writes the value and one outbox
// entry; the second writes nothing and returns the first value.
func testCreateOnce(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	s := openStore(t, c, freshPrefix(), "n1")
	if created, present, err := s.CreateToken(ctx, "t1-abc", nil, []byte("first"), []byte("entry-1")); err != nil || !created || present != nil {
		t.Fatalf("first CreateToken = %v, %q, %v; want created", created, present, err)
	}
	if created, present, err := s.CreateToken(ctx, "t1-abc", nil, []byte("second"), []byte("entry-2")); err != nil || created || !bytes.Equal(present, []byte("first")) {
		t.Fatalf("second CreateToken = %v, %q, %v; want not created, %q", created, present, err, "first")
	}
	var value []byte
	var outbox []string
	err := s.View(ctx, func(tx tokenize.ReadTx) error {
		v, err := tx.Token("t1-abc")
		value = bytes.Clone(v)
		if err != nil {
			return err
		}
		return tx.Outbox(10, func(_ string, v []byte) error { outbox = append(outbox, string(v)); return nil })
	})
	if err != nil || string(value) != "first" || len(outbox) != 1 || outbox[0] != "entry-1" {
		t.Fatalf("stored %q and outbox %q (%v); want %q and [entry-1]", value, outbox, err, "first")
	}
}

// testCreateAbsent: a token required absent that holds a value stops the
// creation; nothing is written, and the token's own (absent) value is nil.
func testCreateAbsent(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	s := openStore(t, c, freshPrefix(), "n1")
	if created, _, err := s.CreateToken(ctx, "t1-old", nil, []byte("old"), nil); err != nil || !created {
		t.Fatalf("CreateToken t1-old = %v, %v", created, err)
	}
	created, present, err := s.CreateToken(ctx, "t2-new", []string{"t2-other", "t1-old"}, []byte("new"), []byte("entry"))
	if err != nil || created || present != nil {
		t.Fatalf("CreateToken t2-new = %v, %q, %v; want not created, nil", created, present, err)
	}
	var n int
	err = s.View(ctx, func(tx tokenize.ReadTx) error {
		v, err := tx.Token("t2-new")
		if v != nil || err != nil {
			return fmt.Errorf("t2-new = %q, %v", v, err)
		}
		n, err = tx.OutboxLen()
		return err
	})
	if err != nil || n != 0 {
		t.Fatalf("after the refused creation: %v, %d outbox entries", err, n)
	}
}

// testCreateAfterRotation: after a token key rotation, an address known
// under the old key keeps its token (its old first length is in use, so
// the map takes the full path) and a new address gets a token under the
// new key, with one creation record each.
func testCreateAfterRotation(t *testing.T, c *etcdtest.Cluster) {
	ctx := context.Background()
	prefix, keys := freshPrefix(), storetest.Keyring()
	a := &storetest.Auditor{}
	m1 := newMap(t, mustOpenNode(t, c, prefix, "n1"), keys, a)
	old, err := m1.Tokenize(ctx, "known@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	m1.Close()
	tk1, _ := keys.Key(vault.PurposeToken, 1)
	rk1, _ := keys.Key(vault.PurposeRecord, 1)
	tk2 := make([]byte, 32)
	rand.Read(tk2)
	rotated := vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: tk1, 2: tk2}, vault.PurposeRecord: {1: rk1}})
	m2 := newMap(t, mustOpenNode(t, c, prefix, "n2"), rotated, a)
	again, err := m2.Tokenize(ctx, "known@example.com", "")
	if err != nil || again.Address != old.Address || again.New {
		t.Fatalf("known address after rotation: %+v, %v; want %s, not new", again, err, old.Address)
	}
	fresh, err := m2.Tokenize(ctx, "new@example.com", "")
	if err != nil || !strings.HasPrefix(fresh.Local, "t2-") || !fresh.New {
		t.Fatalf("new address after rotation: %+v, %v; want a new t2- token", fresh, err)
	}
	if err := m2.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventCreated); len(got) != 2 {
		t.Fatalf("creation records for %v, want one for each of the 2 tokens", got)
	}
}

// testCreateReadOnly: a read-only store (audit verify) creates nothing.
func testCreateReadOnly(t *testing.T, c *etcdtest.Cluster) {
	prefix := freshPrefix()
	openStore(t, c, prefix, "n1") // the map's schema exists
	ro, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: c.Endpoints(), Prefix: prefix,
		Tenant: "test", NodeID: "n1", DialTimeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.CreateToken(context.Background(), "t1-abc", nil, []byte("v"), nil); !errors.Is(err, tokenize.ErrStore) {
		t.Fatalf("CreateToken on a read-only store: %v, want ErrStore", err)
	}
}

// testCreateTwoNodes: two nodes tokenize the same new addresses at once,
// several sessions each: every address gets one token, the same on both,
// and exactly one creation record over both nodes' trails.
func testCreateTwoNodes(t *testing.T, c *etcdtest.Cluster) {
	const n = 60
	ctx := context.Background()
	prefix, keys := freshPrefix(), storetest.Keyring()
	auditors := []*storetest.Auditor{{}, {}}
	maps := []*tokenize.Map{
		newMap(t, mustOpenNode(t, c, prefix, "n1"), keys, auditors[0]),
		newMap(t, mustOpenNode(t, c, prefix, "n2"), keys, auditors[1]),
	}
	var mu sync.Mutex
	tokens := map[string]map[string]bool{} // address → tokens handed out
	var wg sync.WaitGroup
	for node, m := range maps {
		for session := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					j := i
					if (node+session)%2 == 1 {
						j = n - 1 - i // half the sessions from the other end
					}
					addr := fmt.Sprintf("same%d@example.com", j)
					iss, err := m.Tokenize(ctx, addr, "")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if tokens[addr] == nil {
						tokens[addr] = map[string]bool{}
					}
					tokens[addr][iss.Address] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for addr, toks := range tokens {
		if len(toks) != 1 {
			t.Errorf("%s got %d tokens: %v", addr, len(toks), toks)
		}
	}
	for _, m := range maps {
		if err := m.SyncAudit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	created := map[string]int{}
	for _, a := range auditors {
		for _, tok := range a.Tokens(tokenize.EventCreated) {
			created[tok]++
		}
	}
	if len(created) != n {
		t.Errorf("creation records for %d tokens, want %d", len(created), n)
	}
	for tok, k := range created {
		if k != 1 {
			t.Errorf("token %s has %d creation records", tok, k)
		}
	}
}
