package tokenize_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// sealedOf returns the stored ciphertext of a token's record.
func sealedOf(t *testing.T, tm *testMap, token string) []byte {
	t.Helper()
	tok, err := tm.Format().Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := tokenize.SealedOf(tm.stored(t, tok.Local))
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// TestErasureLeavesNoCiphertext checks GDPR Art. 17 at the file level:
// after EraseSubject, neither the record's ciphertext (any copy of it
// bbolt made while the record was renamed) nor the address remains
// anywhere in the database file.
func TestErasureLeavesNoCiphertext(t *testing.T) {
	ctx := context.Background()
	tm := openTestMap(t, tokenize.Options{})
	for i := range 300 { // neighbours on the same and other pages
		if _, err := tm.Tokenize(ctx, fmt.Sprintf("other%03d@example.org", i), "Other"); err != nil {
			t.Fatal(err)
		}
	}
	const addr = "jane.customer@example.com"
	var copies [][]byte
	var token string
	for i := range 5 { // each rename rewrites the leaf: 5 generations
		iss, err := tm.Tokenize(ctx, addr, fmt.Sprintf("Jane %d", i))
		if err != nil {
			t.Fatal(err)
		}
		token = iss.Address
		copies = append(copies, sealedOf(t, tm, token))
	}
	raw, err := os.ReadFile(tm.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, copies[len(copies)-1]) {
		t.Fatal("test is blind: the live ciphertext is not found in the file before erasure")
	}

	tokens, err := tm.EraseSubject(ctx, addr)
	if err != nil || len(tokens) != 1 || tm.Format().Address(tokens[0]) != token {
		t.Fatalf("EraseSubject = %v, %v", tokens, err)
	}
	raw, err = os.ReadFile(tm.path)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range copies {
		if bytes.Contains(raw, c[len(c)-16:]) { // the GCM tag is unique per sealing
			t.Errorf("generation %d of the erased record's ciphertext is still in the file", i)
		}
	}
	if bytes.Contains(raw, []byte(addr)) {
		t.Error("address in the file")
	}
	if _, err := tm.Resolve(ctx, token); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Errorf("Resolve after erasure = %v, want ErrUnknownToken", err)
	}
	// The neighbours survived the wipe.
	for i := range 300 {
		toks, err := tm.Lookup(ctx, fmt.Sprintf("other%03d@example.org", i))
		if err != nil || len(toks) != 1 {
			t.Fatalf("neighbour %d: %v %v", i, toks, err)
		}
		if _, err := tm.Resolve(ctx, tm.Format().Address(toks[0])); err != nil {
			t.Fatalf("neighbour %d: %v", i, err)
		}
	}
	tm.close()
	db, err := bolt.Open(tm.path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("database inconsistent after the wipe: %v", err)
	}
}

// TestScrubWaitsForOldReaders: a read transaction begun before the
// erasure may still read the freed pages, so the wipe waits for it.
func TestScrubWaitsForOldReaders(t *testing.T) {
	ctx := context.Background()
	tm := openTestMap(t, tokenize.Options{})
	if _, err := tm.Tokenize(ctx, "jane@example.com", ""); err != nil {
		t.Fatal(err)
	}
	inView, release, viewDone := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		viewDone <- tm.store.View(ctx, func(tokenize.ReadTx) error {
			close(inView)
			<-release
			return nil
		})
	}()
	<-inView
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := tm.EraseSubject(short, "jane@example.com"); !errors.Is(err, tokenize.ErrScrubBusy) {
		t.Fatalf("EraseSubject with an old reader open = %v, want ErrScrubBusy", err)
	}
	close(release)
	if err := <-viewDone; err != nil {
		t.Fatal(err)
	}
	if n, err := tm.store.ScrubFree(ctx); err != nil || n == 0 {
		t.Fatalf("ScrubFree after the reader closed = %d, %v", n, err)
	}
}

func TestSuppressErased(t *testing.T) {
	ctx := context.Background()
	for _, suppress := range []bool{false, true} {
		t.Run(fmt.Sprint("suppress=", suppress), func(t *testing.T) {
			tm := openTestMap(t, tokenize.Options{SuppressErased: suppress})
			first, err := tm.Tokenize(ctx, "jane@example.com", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tm.EraseSubject(ctx, "jane@example.com"); err != nil {
				t.Fatal(err)
			}
			again, err := tm.Tokenize(ctx, "Jane@Example.com", "")
			if suppress {
				if !errors.Is(err, tokenize.ErrErasedSubject) || errors.Is(err, tokenize.ErrStore) {
					t.Fatalf("Tokenize after a suppressed erasure = %v, want ErrErasedSubject only", err)
				}
				if toks, err := tm.Lookup(ctx, "jane@example.com"); err != nil || len(toks) != 0 {
					t.Fatalf("Lookup = %v, %v; want nothing", toks, err)
				}
				return
			}
			if err != nil || again.Address == first.Address || !again.New {
				t.Fatalf("Tokenize after erasure = %+v, %v; want a new, different token", again, err)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fa := &fakeAuditor{}
	tm := openTestMap(t, tokenize.Options{Now: func() time.Time { return now }, Audit: fa})
	old, _ := tm.Tokenize(ctx, "old@example.com", "")
	now = now.Add(48 * time.Hour)
	fresh, _ := tm.Tokenize(ctx, "fresh@example.com", "")

	fa.set(func(f *fakeAuditor) { f.ready = errors.New("audit down") })
	if n, err := tm.Expire(ctx, now.Add(-24*time.Hour), nil); !errors.Is(err, tokenize.ErrAudit) || n != 0 {
		t.Fatalf("Expire with a failing audit = %d, %v", n, err)
	}
	// Lookup, not Resolve: a resolution is a use and would renew it.
	if toks, err := tm.Lookup(ctx, "old@example.com"); err != nil || len(toks) != 1 {
		t.Fatalf("a token expired although its expiry was not audited: %v %v", toks, err)
	}

	// Inspect, unlike Resolve, is not a use: it does not renew the token.
	if _, err := tm.Inspect(ctx, old.Address); err != nil {
		t.Fatal(err)
	}
	fa.set(func(f *fakeAuditor) { f.ready = nil })
	n, err := tm.Expire(ctx, now.Add(-24*time.Hour), map[string]string{"max_idle": "24h0m0s"})
	if err := tm.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, r := range fa.delivered() {
		if r.Event == tokenize.EventExpired {
			audited = append(audited, r.Token)
		}
	}
	if err != nil || n != 1 || len(audited) != 1 || audited[0] != old.Address {
		t.Fatalf("Expire = %d, %v, audited %v; want the old token", n, err, audited)
	}
	if _, err := tm.Resolve(ctx, old.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Errorf("expired token resolves: %v", err)
	}
	if _, err := tm.Resolve(ctx, fresh.Address); err != nil {
		t.Errorf("fresh token: %v", err)
	}
}
