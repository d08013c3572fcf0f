package tokenize_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TestStageCollisionsInOneMessage forces one-character tokens: the new
// addresses of one message collide with each other, are staged at
// distinct tokens, and commit, each resolving to its own address.
func TestStageCollisionsInOneMessage(t *testing.T) {
	ctx := context.Background()
	f := testFormat
	f.Length = 1
	m := openTestMap(t, tokenize.Options{Format: f, MinLength: 1})
	st := m.Begin()
	seen := map[string]string{}
	for i := range 100 {
		addr := fmt.Sprintf("user%d@example.com", i)
		iss, err := st.Tokenize(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[iss.Local]; dup {
			t.Fatalf("%s and %s staged at token %s", prev, addr, iss.Local)
		}
		seen[iss.Local] = addr
	}
	if n, err := st.Commit(ctx); n != 100 || err != nil {
		t.Fatalf("Commit = %d, %v", n, err)
	}
	for tok, addr := range seen {
		if e, err := m.Resolve(ctx, tok); err != nil || e.Original != addr {
			t.Fatalf("Resolve(%s) = %q, %v; want %q", tok, e.Original, err, addr)
		}
	}
}

// TestStageTokenTakenBeforeCommit: the address got another token between
// staging and commit (erased, then issued again as a new one): the
// message, which carries the staged token, fails with ErrStagedTokenTaken
// and writes nothing.
func TestStageTokenTakenBeforeCommit(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	st := m.Begin()
	staged, err := st.Tokenize(ctx, "late@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Tokenize(ctx, "late@example.com", "")
	if err != nil || first.Local != staged.Local {
		t.Fatalf("Tokenize = %+v, %v; want the staged token", first, err)
	}
	if err := m.Erase(ctx, first.Address); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx); !errors.Is(err, tokenize.ErrStagedTokenTaken) {
		t.Fatalf("Commit = %v, want ErrStagedTokenTaken", err)
	}
	if _, err := m.Resolve(ctx, staged.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("the erased token resolves again: %v", err)
	}
}

// TestStageKeepsLastDisplayName: the envelope sender is staged without a
// name, the From field names it; the committed record has the name.
func TestStageKeepsLastDisplayName(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	st := m.Begin()
	first, err := st.Tokenize(ctx, "jane@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := st.Tokenize(ctx, "Jane@example.com", "Jane Doe"); err != nil || again.Local != first.Local {
		t.Fatalf("Tokenize = %+v, %v", again, err)
	}
	if _, err := st.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := m.Resolve(ctx, first.Address); err != nil || e.DisplayName != "Jane Doe" || e.Original != "jane@example.com" {
		t.Fatalf("Resolve = %+v, %v", e, err)
	}
}
