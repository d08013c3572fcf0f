package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// The staged creation of a message's new tokens (tokenize.Stage) on the
// backend: nothing before the commit, everything at it, one token for an
// address however many messages stage it (DESIGN.md invariants 3 and 4).

// storedTokens counts the token records and outbox entries of a store.
func storedTokens(t *testing.T, s tokenize.Store) (tokens, outbox int) {
	t.Helper()
	err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		if err := tx.Tokens("", func(string, []byte) (bool, error) { tokens++; return true, nil }); err != nil {
			return err
		}
		var err error
		outbox, err = tx.OutboxLen()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tokens, outbox
}

// testStagedCommit: staged tokens are written only by Commit, all of them
// with their creation records, also past the store's MaxBatch; a stage
// dropped without Commit leaves nothing.
func testStagedCommit(t *testing.T, o Opener) {
	ctx := context.Background()
	a := &Auditor{}
	s := open(t, o)
	m := newMap(t, s, tokenize.Options{Audit: a})
	dropped := m.Begin()
	for i := range 10 {
		if _, err := dropped.Tokenize(ctx, fmt.Sprintf("gone%d@example.com", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if n, ob := storedTokens(t, s); n != 0 || ob != 0 {
		t.Fatalf("staging wrote %d tokens and %d outbox entries", n, ob)
	}
	st := m.Begin()
	want := s.MaxBatch() // two writes per token: at least two updates
	var toks []string
	for i := range want {
		addr := fmt.Sprintf("user%d@example.com", i)
		iss, err := st.Tokenize(ctx, addr, "")
		if err != nil || !iss.New {
			t.Fatalf("Tokenize = %+v, %v", iss, err)
		}
		if again, _ := st.Tokenize(ctx, addr, ""); again.Local != iss.Local || again.New {
			t.Fatalf("second Tokenize in one message = %+v, want %s not new", again, iss.Local)
		}
		toks = append(toks, iss.Address)
	}
	if got, err := st.Commit(ctx); got != want || err != nil {
		t.Fatalf("Commit = %d, %v; want %d", got, err, want)
	}
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventCreated); !slices.Equal(got, toks) {
		t.Fatalf("creation records for %d tokens, want %d, in staging order", len(got), len(toks))
	}
	for i, tok := range toks {
		if e, err := m.Resolve(ctx, tok); err != nil || e.Original != fmt.Sprintf("user%d@example.com", i) {
			t.Fatalf("Resolve(%s) = %q, %v", tok, e.Original, err)
		}
	}
	if iss, err := m.Tokenize(ctx, "user0@example.com", ""); err != nil || iss.New || iss.Address != toks[0] {
		t.Fatalf("Tokenize after the commit = %+v, %v; want the committed token", iss, err)
	}
}

// testStagedConcurrent: messages staging the same new address at once
// each commit; the address gets one token and one creation record.
func testStagedConcurrent(t *testing.T, o Opener) {
	ctx := context.Background()
	a := &Auditor{}
	m := newMap(t, open(t, o), tokenize.Options{Audit: a})
	stages := make([]*tokenize.Stage, 8)
	toks := make([]string, len(stages))
	for i := range stages {
		stages[i] = m.Begin()
		iss, err := stages[i].Tokenize(ctx, "same@example.com", "")
		if err != nil || !iss.New {
			t.Fatalf("Tokenize = %+v, %v", iss, err)
		}
		toks[i] = iss.Address
	}
	var wg sync.WaitGroup
	created := make([]int, len(stages))
	for i, st := range stages {
		wg.Go(func() {
			var err error
			if created[i], err = st.Commit(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
		t.Fatalf("stages gave tokens %v", toks)
	}
	total := 0
	for _, n := range created {
		total += n
	}
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventCreated); total != 1 || len(got) != 1 || got[0] != toks[0] {
		t.Fatalf("%d created, creation records for %v; want one for %s", total, got, toks[0])
	}
}
