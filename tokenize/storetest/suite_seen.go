package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Last-seen times (DESIGN.md, Tokens): noted per use, written in batches,
// read as the latest of the record's and (where the store keeps them
// apart, tokenize.SeenTx) every node's.

// testLastSeen: a use becomes the token's last-seen time once flushed,
// survives a restart and keeps the token from expiring while an idle one
// expires; where the store keeps last-seen times apart, the use leaves
// the record's bytes as they were and the erasure removes the times.
func testLastSeen(t *testing.T, o Opener) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	opts := tokenize.Options{Audit: &Auditor{}, Now: func() time.Time { return now }}
	keys := Keyring()
	s := o()
	m := newMapKeys(t, s, keys, opts)
	used, err := m.Tokenize(ctx, "used@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	idle, err := m.Tokenize(ctx, "idle@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	apart := keepsSeenApart(t, s)
	before := rawToken(t, s, used.Local)

	now = t0.Add(47 * time.Hour)
	if _, err := m.Resolve(ctx, used.Address); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // writes the pending last-seen times
		t.Fatal(err)
	}
	if after := rawToken(t, s, used.Local); apart && !bytes.Equal(after, before) {
		t.Errorf("a use rewrote the record of a store that keeps last-seen times apart")
	} else if !apart && bytes.Equal(after, before) {
		t.Errorf("a use left the record as it was on a store that keeps last-seen times in it")
	}
	s.Close()

	s = open(t, o)
	m = newMapKeys(t, s, keys, opts)
	if e, err := m.Inspect(ctx, used.Address); err != nil || !e.LastSeen.Equal(now) {
		t.Fatalf("after a restart: last seen %v, %v; want %v", e.LastSeen, err, now)
	}
	now = t0.Add(48 * time.Hour)
	if n, err := m.Expire(ctx, now.Add(-24*time.Hour), nil); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1 (the idle token)", n, err)
	}
	if _, err := m.Inspect(ctx, idle.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Errorf("idle token after the expiry: %v, want ErrUnknownToken", err)
	}
	erased, err := m.EraseSubject(ctx, "used@example.com")
	if err != nil && !errors.Is(err, tokenize.ErrScrubBusy) || !slices.Equal(erased, []string{used.Local}) {
		t.Fatalf("EraseSubject = %v, %v", erased, err)
	}
	if apart {
		if at := storedSeen(t, s, used.Local); at != 0 {
			t.Errorf("the erased token's last-seen times are still stored (%d)", at)
		}
	}
}

// keepsSeenApart reports whether the store's transactions implement
// tokenize.SeenTx.
func keepsSeenApart(t *testing.T, s tokenize.Store) bool {
	t.Helper()
	var apart bool
	if err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		_, apart = tx.(tokenize.SeenTx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return apart
}

func rawToken(t *testing.T, s tokenize.Store, local string) []byte {
	t.Helper()
	var v []byte
	if err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		raw, err := tx.Token(local)
		v = slices.Clone(raw)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func storedSeen(t *testing.T, s tokenize.Store, local string) int64 {
	t.Helper()
	var at int64
	if err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		var err error
		at, err = tx.(tokenize.SeenTx).Seen(local)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return at
}
