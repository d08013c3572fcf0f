package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

// Opener opens the backend under test. Every call after the first opens
// the same data again, as a restart would; the suite closes each store it
// opened before opening the next.
type Opener func() tokenize.Store

// Run is the conformance suite: the store contract first, then the map's
// promises on top of the backend. newStore returns an Opener on fresh,
// empty storage for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) Opener) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"tokens", testTokens},
		{"update-rolls-back", testRollback},
		{"outbox", testOutbox},
		{"meta-and-keys", testMetaAndKeys},
		{"concurrent-creation", testConcurrentCreation},
		{"collisions", testCollisions},
		{"tombstones", testTombstones},
		{"expiry", testExpiry},
		{"last-seen", testLastSeen},
		{"outbox-delivery", testOutboxDelivery},
		{"restart", testRestart},
		{"staged-commit", testStagedCommit},
		{"staged-concurrent", testStagedConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

// open opens a store that the test closes.
func open(t *testing.T, o Opener) tokenize.Store {
	s := o()
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s tokenize.Store, fn func(tokenize.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func testTokens(t *testing.T, o Opener) {
	s := open(t, o)
	put(t, s, func(tx tokenize.Tx) error {
		for _, k := range []string{"t1-c", "t1-a", "t1-b"} {
			if err := tx.PutToken(k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		if v, err := tx.Token("t1-b"); err != nil || string(v) != "v-t1-b" {
			return fmt.Errorf("Token(t1-b) = %q, %v", v, err)
		}
		if v, err := tx.Token("t1-x"); err != nil || v != nil {
			return fmt.Errorf("Token of a missing key = %q, %v; want nil", v, err)
		}
		var all, after []string
		tx.Tokens("", func(k string, _ []byte) (bool, error) { all = append(all, k); return true, nil })
		tx.Tokens("t1-a", func(k string, _ []byte) (bool, error) { after = append(after, k); return false, nil })
		if !slices.Equal(all, []string{"t1-a", "t1-b", "t1-c"}) || !slices.Equal(after, []string{"t1-b"}) {
			return fmt.Errorf("Tokens visited %v, after t1-a (stopping at once) %v", all, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testRollback(t *testing.T, o Opener) {
	s := open(t, o)
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx tokenize.Tx) error {
		tx.PutToken("t1-a", []byte("v"))
		tx.AppendOutbox([]byte("r"))
		tx.PutMeta("m", []byte("x"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	s.View(context.Background(), func(tx tokenize.ReadTx) error {
		v, _ := tx.Token("t1-a")
		n, _ := tx.OutboxLen()
		m, _ := tx.Meta("m")
		if v != nil || n != 0 || m != nil {
			t.Errorf("a failed Update left token %q, %d outbox entries, meta %q", v, n, m)
		}
		return nil
	})
}

func testOutbox(t *testing.T, o Opener) {
	s := open(t, o)
	for i := range 5 {
		put(t, s, func(tx tokenize.Tx) error { return tx.AppendOutbox([]byte{byte(i)}) })
	}
	var refs []string
	var vals []byte
	s.View(context.Background(), func(tx tokenize.ReadTx) error {
		return tx.Outbox(3, func(ref string, v []byte) error {
			refs, vals = append(refs, ref), append(vals, v...)
			return nil
		})
	})
	if len(refs) != 3 || !slices.IsSorted(refs) || !slices.Equal(vals, []byte{0, 1, 2}) {
		t.Fatalf("Outbox(3) gave refs %v values %v; want the first three in commit order, refs sorted", refs, vals)
	}
	put(t, s, func(tx tokenize.Tx) error { return tx.DeleteOutbox(refs[:2]) })
	s.View(context.Background(), func(tx tokenize.ReadTx) error {
		n, _ := tx.OutboxLen()
		var first string
		tx.Outbox(1, func(ref string, _ []byte) error { first = ref; return nil })
		if n != 3 || first != refs[2] {
			t.Errorf("after deleting two: %d entries, first %s; want 3, %s", n, first, refs[2])
		}
		return nil
	})
}

func testMetaAndKeys(t *testing.T, o Opener) {
	ctx := context.Background()
	s := o()
	put(t, s, func(tx tokenize.Tx) error { return tx.PutMeta("progress", []byte("7")) })
	keys := []vault.WrappedKey{{Purpose: vault.PurposeToken, Version: 1, Wrapped: []byte("w1")}}
	if err := s.PutWrappedKeys(ctx, keys); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, o)
	got, err := s.WrappedKeys(ctx)
	if err != nil || len(got) != 1 || string(got[0].Wrapped) != "w1" {
		t.Fatalf("WrappedKeys after reopen = %+v, %v", got, err)
	}
	s.View(ctx, func(tx tokenize.ReadTx) error {
		if v, _ := tx.Meta("progress"); string(v) != "7" {
			t.Errorf("Meta after reopen = %q", v)
		}
		return nil
	})
}

// testConcurrentCreation: many sessions see one new address at once; it
// gets one token and exactly one creation record.
func testConcurrentCreation(t *testing.T, o Opener) {
	ctx := context.Background()
	a := &Auditor{}
	m := newMap(t, open(t, o), tokenize.Options{Audit: a})
	var wg sync.WaitGroup
	toks := make([]string, 16)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iss, err := m.Tokenize(ctx, "same@example.com", "")
			if err != nil {
				t.Error(err)
			}
			toks[i] = iss.Address
		}()
	}
	wg.Wait()
	if toks[0] == "" || slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
		t.Fatalf("concurrent creation gave tokens %v", toks)
	}
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventCreated); len(got) != 1 || got[0] != toks[0] {
		t.Fatalf("creation records for %v, want one for %s", got, toks[0])
	}
}

// testCollisions forces one-character tokens: colliding addresses get
// longer tokens, each resolving to its own address.
func testCollisions(t *testing.T, o Opener) {
	ctx := context.Background()
	f := testFormat
	f.Length = 1
	m := newMap(t, open(t, o), tokenize.Options{Format: f, MinLength: 1})
	seen := map[string]string{}
	for i := range 100 {
		addr := fmt.Sprintf("user%d@example.com", i)
		iss, err := m.Tokenize(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[iss.Local]; dup {
			t.Fatalf("%s and %s share token %s", prev, addr, iss.Local)
		}
		seen[iss.Local] = addr
	}
	for tok, addr := range seen {
		if e, err := m.Resolve(ctx, tok); err != nil || e.Original != addr {
			t.Fatalf("Resolve(%s) = %q, %v; want %q", tok, e.Original, err, addr)
		}
	}
}

// testTombstones: an erased token never resolves and is never reissued.
func testTombstones(t *testing.T, o Opener) {
	ctx := context.Background()
	m := newMap(t, open(t, o), tokenize.Options{})
	first, _ := m.Tokenize(ctx, "gone@example.com", "Gone")
	if toks, err := m.EraseSubject(ctx, "gone@example.com"); err != nil || len(toks) != 1 {
		t.Fatalf("EraseSubject = %v, %v", toks, err)
	}
	if _, err := m.Resolve(ctx, first.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("erased token resolves: %v", err)
	}
	again, err := m.Tokenize(ctx, "gone@example.com", "")
	if err != nil || again.Address == first.Address || !again.New {
		t.Fatalf("Tokenize after erasure = %+v, %v; want a new token", again, err)
	}
	n := 0
	m.Each(ctx, func(tokenize.Entry) error { n++; return nil })
	if n != 1 {
		t.Fatalf("Each visited %d live tokens, want 1", n)
	}
}

// testExpiry: idle tokens expire in batches smaller than the store's
// bound, each with its record; used ones stay.
func testExpiry(t *testing.T, o Opener) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Auditor{}
	s := open(t, o)
	m := newMap(t, s, tokenize.Options{Audit: a, Now: func() time.Time { return now }})
	idle := s.MaxBatch() + 3 // more than one batch
	for i := range idle {
		if _, err := m.Tokenize(ctx, fmt.Sprintf("idle%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(48 * time.Hour)
	fresh, _ := m.Tokenize(ctx, "fresh@example.com", "")
	n, err := m.Expire(ctx, now.Add(-24*time.Hour), nil)
	if err != nil || n != idle {
		t.Fatalf("Expire = %d, %v; want %d", n, err, idle)
	}
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventExpired); len(got) != idle || slices.Contains(got, fresh.Address) {
		t.Fatalf("%d expiry records (fresh token among them: %v), want %d", len(got), slices.Contains(got, fresh.Address), idle)
	}
	if _, err := m.Resolve(ctx, fresh.Address); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
}

// testOutboxDelivery: each record reaches the auditor exactly once, also
// when a process stops with records in the outbox (its trail hung) and
// another opens the store.
func testOutboxDelivery(t *testing.T, o Opener) {
	ctx := context.Background()
	hung := &Auditor{Hold: make(chan struct{})}
	s := o()
	m := newMap(t, s, tokenize.Options{Audit: hung})
	for i := range 5 {
		if _, err := m.Tokenize(ctx, fmt.Sprintf("u%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // the process is gone: its records stay in the outbox
	defer close(hung.Hold)
	up := &Auditor{}
	m = newMap(t, open(t, o), tokenize.Options{Audit: up})
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Tokenize(ctx, "late@example.com", ""); err != nil {
		t.Fatal(err)
	}
	m.Close()
	got := up.Tokens(tokenize.EventCreated)
	if len(got) != 6 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 6 {
		t.Fatalf("delivered %v; want 6 distinct creation records", got)
	}
}

func testRestart(t *testing.T, o Opener) {
	ctx := context.Background()
	keys := Keyring()
	s := o()
	m := newMapKeys(t, s, keys, tokenize.Options{})
	iss, _ := m.Tokenize(ctx, "a@example.com", "Jane")
	m.Close()
	s.Close()
	m = newMapKeys(t, open(t, o), keys, tokenize.Options{})
	if e, err := m.Resolve(ctx, iss.Address); err != nil || e.Original != "a@example.com" || e.DisplayName != "Jane" {
		t.Fatalf("after restart: %+v %v", e, err)
	}
}

var testFormat = tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}

// Keyring returns a keyring of fresh random token and record keys.
func Keyring() *vault.Keyring {
	key := func() []byte {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: key()}, vault.PurposeRecord: {1: key()},
	})
}

func newMap(t *testing.T, s tokenize.Store, opts tokenize.Options) *tokenize.Map {
	return newMapKeys(t, s, Keyring(), opts)
}

func newMapKeys(t *testing.T, s tokenize.Store, keys *vault.Keyring, opts tokenize.Options) *tokenize.Map {
	t.Helper()
	if opts.Format == (tokenize.Format{}) {
		opts.Format = testFormat
	}
	opts.Tenant = "test"
	m, err := tokenize.NewMap(s, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
