package tokenize_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

func memMap(t *testing.T, s tokenize.Store, keys *vault.Keyring, a tokenize.Auditor) *tokenize.Map {
	t.Helper()
	m, err := tokenize.NewMap(s, keys, tokenize.Options{Format: testFormat, Tenant: "test", Audit: a})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCopy moves a map between two in-memory stores in small batches:
// every token resolves to its address on the copy, erased ones stay
// erased, and the wrapped keys and meta values come along.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	keys := testKeyring(1)
	from := storetest.NewMem()
	wrapped := []vault.WrappedKey{{Purpose: vault.PurposeToken, Version: 1, Wrapped: []byte("wrapped-1")}}
	if err := from.PutWrappedKeys(ctx, wrapped); err != nil {
		t.Fatal(err)
	}
	m := memMap(t, from, keys, &storetest.Auditor{})
	tokens := map[string]string{}
	for i := range 100 {
		addr := fmt.Sprintf("user%d@example.com", i)
		iss, err := m.Tokenize(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		tokens[iss.Address] = addr
	}
	erased := map[string]bool{}
	for tok := range tokens {
		if len(erased) == 10 {
			break
		}
		if err := m.Erase(ctx, tok); err != nil {
			t.Fatal(err)
		}
		erased[tok] = true
	}
	if err := m.Close(); err != nil { // delivers the outbox
		t.Fatal(err)
	}

	to := storetest.NewMem()
	to.MaxBatchSize = 7 // the copy must split
	st, err := tokenize.Copy(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tokens != 90 || st.Tombstones != 10 || st.Keys != 1 {
		t.Fatalf("copied %+v, want 90 tokens, 10 tombstones, 1 key", st)
	}
	got, _ := to.WrappedKeys(ctx)
	if len(got) != 1 || string(got[0].Wrapped) != "wrapped-1" {
		t.Fatalf("wrapped keys on the copy: %+v", got)
	}
	checkResolves(t, memMap(t, to, keys, &storetest.Auditor{}), tokens, erased)

	if _, err := tokenize.Copy(ctx, from, to); !errors.Is(err, tokenize.ErrNotEmpty) {
		t.Fatalf("copy into a full store: %v, want ErrNotEmpty", err)
	}
}

// checkResolves resolves every token on m: its address, or unknown when
// erased.
func checkResolves(t *testing.T, m *tokenize.Map, tokens map[string]string, erased map[string]bool) {
	t.Helper()
	defer m.Close()
	for tok, addr := range tokens {
		e, err := m.Resolve(context.Background(), tok)
		switch {
		case erased[tok] && !errors.Is(err, tokenize.ErrUnknownToken):
			t.Fatalf("erased token %s: %v, want ErrUnknownToken", tok, err)
		case !erased[tok] && (err != nil || e.Original != addr):
			t.Fatalf("token %s: %q, %v", tok, e.Original, err)
		}
	}
}

// TestCopyRefusesPendingOutbox: records not yet in the trail would get
// new refs in the destination, and could be delivered twice.
func TestCopyRefusesPendingOutbox(t *testing.T) {
	ctx := context.Background()
	from := storetest.NewMem()
	m := memMap(t, from, testKeyring(1), &storetest.Auditor{DeliverErr: errors.New("trail down")})
	if _, err := m.Tokenize(ctx, "jane@example.com", ""); err != nil {
		t.Fatal(err)
	}
	m.Close()
	_, err := tokenize.Copy(ctx, from, storetest.NewMem())
	if !errors.Is(err, tokenize.ErrOutboxPending) {
		t.Fatalf("copy with a pending outbox: %v, want ErrOutboxPending", err)
	}
}
