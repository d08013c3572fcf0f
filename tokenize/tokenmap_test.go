package tokenize_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/vault"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
)

func TestTokenizeResolve(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	iss, err := m.Tokenize(ctx, "John.Doe@Example.com", "John Doe")
	if err != nil {
		t.Fatal(err)
	}
	if !iss.New || !strings.HasPrefix(iss.Address, "t1-") || !strings.HasSuffix(iss.Address, "@relay.company.example") || len(iss.Local) != len("t1-")+16 {
		t.Fatalf("Tokenize = %+v", iss)
	}
	again, err := m.Tokenize(ctx, "john.doe@EXAMPLE.COM", "")
	if err != nil || again.Local != iss.Local || again.New {
		t.Fatalf("second Tokenize = %+v, %v; want the same token, not new", again, err)
	}
	e, err := m.Resolve(ctx, strings.ToUpper(iss.Address)) // CRMs re-case addresses
	if err != nil {
		t.Fatal(err)
	}
	if e.Original != "John.Doe@Example.com" || e.DisplayName != "John Doe" || e.Local != iss.Local {
		t.Fatalf("Resolve = %+v", e)
	}
	if e.Created.IsZero() || e.LastSeen.Before(e.Created) {
		t.Fatalf("times: %+v", e)
	}
}

func TestDisplayNameUpdate(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	iss, _ := m.Tokenize(ctx, "a@example.com", "Ann")
	m.Tokenize(ctx, "a@example.com", "") // no name: keep the known one
	if e, _ := m.Resolve(ctx, iss.Address); e.DisplayName != "Ann" {
		t.Fatalf("name = %q", e.DisplayName)
	}
	m.Tokenize(ctx, "a@example.com", "Ann Smith")
	if e, _ := m.Resolve(ctx, iss.Address); e.DisplayName != "Ann Smith" {
		t.Fatalf("name = %q", e.DisplayName)
	}
}

func TestResolveUnknown(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	for _, tok := range []string{"t1-aaaaaaaaaaaaaaaa@relay.company.example", "garbage", "t1-aaaaaaaaaaaaaaaa@elsewhere.example", ""} {
		if _, err := m.Resolve(ctx, tok); !errors.Is(err, tokenize.ErrUnknownToken) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownToken", tok, err)
		}
	}
}

func TestTokenizeRejectsBadAddress(t *testing.T) {
	m := openTestMap(t, tokenize.Options{})
	if _, err := m.Tokenize(context.Background(), "no-at-sign", ""); !errors.Is(err, address.ErrInvalidAddress) {
		t.Fatalf("err = %v", err)
	}
	iss, _ := m.Tokenize(context.Background(), "a@example.com", "")
	if _, err := m.Tokenize(context.Background(), strings.ToUpper(iss.Address), ""); !errors.Is(err, tokenize.ErrAlreadyToken) {
		t.Fatalf("tokenizing a token: err = %v", err)
	}
}

// TestCollisionLengthens forces one-character tokens (5 bits): most of 200
// addresses collide, and each must get its own longer token.
func TestCollisionLengthens(t *testing.T) {
	ctx := context.Background()
	f := testFormat
	f.Length = 1
	m := openTestMap(t, tokenize.Options{Format: f, MinLength: 1})
	seen := map[string]string{}
	longer := 0
	for i := range 200 {
		addr := fmt.Sprintf("user%d@example.com", i)
		iss, err := m.Tokenize(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[iss.Local]; dup {
			t.Fatalf("%s and %s share token %s", prev, addr, iss.Local)
		}
		seen[iss.Local] = addr
		if len(iss.Local) > len("t1-")+1 {
			longer++
		}
	}
	if longer == 0 {
		t.Fatal("no collision happened; the test proves nothing")
	}
	for tok, addr := range seen {
		e, err := m.Resolve(ctx, tok)
		if err != nil || e.Original != addr {
			t.Fatalf("Resolve(%s) = %q, %v; want %q", tok, e.Original, err, addr)
		}
		if again, _ := m.Tokenize(ctx, addr, ""); again.Local != tok {
			t.Fatalf("Tokenize(%s) = %s after collisions, want %s", addr, again.Local, tok)
		}
	}
}

// TestNoPlaintextAtRest scans the raw database file for every address and
// display name it stored, in several encodings.
func TestNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	var secrets []string
	for i := range 300 {
		addr := fmt.Sprintf("customer%03d@example-corp.com", i)
		name := fmt.Sprintf("Customer Number%03d", i)
		if _, err := m.Tokenize(ctx, addr, name); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, addr, name, fmt.Sprintf("customer%03d", i))
	}
	m.close()
	raw, err := os.ReadFile(m.path)
	if err != nil {
		t.Fatal(err)
	}
	lower := bytes.ToLower(raw)
	for _, s := range secrets {
		for _, enc := range []string{s, strings.ToLower(s)} {
			if bytes.Contains(lower, []byte(strings.ToLower(enc))) {
				t.Fatalf("database file contains %q in plaintext", enc)
			}
		}
	}
	if bytes.Contains(lower, []byte("example-corp")) {
		t.Fatal("database file contains a customer domain in plaintext")
	}
}

func TestTamperedRecord(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	a, _ := m.Tokenize(ctx, "a@example.com", "A")
	b, _ := m.Tokenize(ctx, "b@example.com", "B")
	tests := []struct {
		name   string
		mutate func(tx tokenize.Tx) error
		token  string
	}{
		{"flip a ciphertext bit", func(tx tokenize.Tx) error {
			v, _ := tx.Token(a.Local)
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1
			return tx.PutToken(a.Local, v)
		}, a.Address},
		{"swap records between tokens", func(tx tokenize.Tx) error {
			v, _ := tx.Token(a.Local)
			return tx.PutToken(b.Local, bytes.Clone(v))
		}, b.Address},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.store.Update(ctx, tt.mutate); err != nil {
				t.Fatal(err)
			}
			e, err := m.Resolve(ctx, tt.token)
			if !errors.Is(err, tokenize.ErrRecordAuth) {
				t.Fatalf("Resolve = %+v, %v; want ErrRecordAuth", e, err)
			}
		})
	}
}

func TestEraseLeavesTombstone(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	iss, _ := m.Tokenize(ctx, "gone@example.com", "Gone")
	keep, _ := m.Tokenize(ctx, "kept@example.com", "")
	tokens, err := m.EraseSubject(ctx, "GONE@example.com")
	if err != nil || len(tokens) != 1 || tokens[0] != iss.Local {
		t.Fatalf("EraseSubject = %v, %v", tokens, err)
	}
	if _, err := m.Resolve(ctx, iss.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("Resolve after erase = %v", err)
	}
	if err := m.Erase(ctx, iss.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("second Erase = %v", err)
	}
	if got, _ := m.Lookup(ctx, "gone@example.com"); len(got) != 0 {
		t.Fatalf("Lookup after erase = %v", got)
	}
	// The same address comes back: it gets a new token, never the erased one.
	again, err := m.Tokenize(ctx, "gone@example.com", "")
	if err != nil || again.Local == iss.Local || !again.New {
		t.Fatalf("Tokenize after erase = %+v, %v", again, err)
	}
	if e, err := m.Resolve(ctx, keep.Address); err != nil || e.Original != "kept@example.com" {
		t.Fatalf("other token damaged: %+v %v", e, err)
	}
	n := 0
	m.Each(ctx, func(tokenize.Entry) error { n++; return nil })
	if n != 2 {
		t.Fatalf("Each visited %d live tokens, want 2", n)
	}
}

func TestRestartResolves(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	iss, _ := m.Tokenize(ctx, "a@example.com", "")
	m.close()
	m2 := reopenTestMap(t, m.path, m.keys, tokenize.Options{})
	if e, err := m2.Resolve(ctx, iss.Address); err != nil || e.Original != "a@example.com" {
		t.Fatalf("after restart: %+v %v", e, err)
	}
}

func TestOpenRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(path, []byte("this is not a bbolt file, just text padding it out........"), 0o600)
	if _, err := boltstore.Open(path); !errors.Is(err, tokenize.ErrStore) {
		t.Fatalf("Open = %v", err)
	}
}

func TestOpenLockedByOtherProcess(t *testing.T) {
	m := openTestMap(t, tokenize.Options{})
	// bbolt's flock is per open file description: a second Open waits,
	// then reports the lock.
	if _, err := boltstore.Open(m.path); !errors.Is(err, tokenize.ErrStore) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open = %v", err)
	}
}

func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	iss, _ := m.Tokenize(ctx, "a@example.com", "")
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := m.store.BackupFile(backup); err != nil {
		t.Fatal(err)
	}
	later, _ := m.Tokenize(ctx, "b@example.com", "")
	if err := boltstore.Restore(backup, m.path); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Restore over an open database = %v, want refusal", err)
	}
	m.close()
	os.WriteFile(m.path, []byte("corrupted"), 0o600) // restoring a damaged file must work
	if err := boltstore.Restore(backup, m.path); err != nil {
		t.Fatal(err)
	}
	m2 := reopenTestMap(t, m.path, m.keys, tokenize.Options{})
	if e, err := m2.Resolve(ctx, iss.Address); err != nil || e.Original != "a@example.com" {
		t.Fatalf("restored: %+v %v", e, err)
	}
	if _, err := m2.Resolve(ctx, later.Address); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Fatalf("token created after the backup: %v", err)
	}
	if err := boltstore.Restore(filepath.Join(t.TempDir(), "missing.db"), m.path); err == nil {
		t.Fatal("Restore from a missing file succeeded")
	}
}

func TestReencryptAfterRecordKeyRotation(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	var tokens []string
	for i := range 1200 { // more than two batches
		iss, _ := m.Tokenize(ctx, fmt.Sprintf("u%d@example.com", i), "")
		tokens = append(tokens, iss.Address)
	}
	m.close()
	rec := map[uint32][]byte{}
	for _, v := range m.keys.Versions(vault.PurposeRecord) {
		rec[v], _ = m.keys.Key(vault.PurposeRecord, v)
	}
	tk, _ := m.keys.Key(vault.PurposeToken, 1)
	rec[2] = randomKey()
	keys := vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{vault.PurposeToken: {1: tk}, vault.PurposeRecord: rec})
	m2 := reopenTestMap(t, m.path, keys, tokenize.Options{})
	deadline := time.Now().Add(20 * time.Second)
	for m2.ReencryptPending() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m2.ReencryptPending() {
		t.Fatal("re-encryption did not finish")
	}
	m2.store.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(k string, v []byte) (bool, error) {
			if kv, _ := tokenize.RecordKeyVersion(v); kv != 2 {
				t.Errorf("%s still under record key v%d", k, kv)
			}
			return true, nil
		})
	})
	// Only version 2 is needed now: drop version 1 and resolve everything.
	m2.close()
	keys3 := vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{vault.PurposeToken: {1: tk}, vault.PurposeRecord: {2: rec[2]}})
	m3 := reopenTestMap(t, m.path, keys3, tokenize.Options{})
	for i, tok := range tokens {
		if e, err := m3.Resolve(ctx, tok); err != nil || e.Original != fmt.Sprintf("u%d@example.com", i) {
			t.Fatalf("Resolve(%s) = %+v, %v", tok, e, err)
		}
	}
}

func TestTokenKeyRotationKeepsTokens(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	old, _ := m.Tokenize(ctx, "a@example.com", "")
	m.close()
	tk1, _ := m.keys.Key(vault.PurposeToken, 1)
	rk, _ := m.keys.Key(vault.PurposeRecord, 1)
	keys := vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: tk1, 2: randomKey()}, vault.PurposeRecord: {1: rk}})
	m2 := reopenTestMap(t, m.path, keys, tokenize.Options{})
	if again, _ := m2.Tokenize(ctx, "a@example.com", ""); again.Local != old.Local {
		t.Fatalf("known address got %s after token-key rotation, want %s", again.Local, old.Local)
	}
	if fresh, _ := m2.Tokenize(ctx, "new@example.com", ""); !strings.HasPrefix(fresh.Local, "t2-") {
		t.Fatalf("new address got %s, want a version-2 token", fresh.Local)
	}
}

func TestLastSeenFlushed(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := openTestMap(t, tokenize.Options{Now: clock, FlushInterval: time.Hour})
	iss, _ := m.Tokenize(ctx, "a@example.com", "")
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	m.Resolve(ctx, iss.Address)
	if err := m.FlushLastSeen(); err != nil {
		t.Fatal(err)
	}
	e, _ := m.Resolve(ctx, iss.Address)
	if !e.LastSeen.Equal(now) || !e.Created.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("created %v last seen %v, want last seen %v", e.Created, e.LastSeen, now)
	}
}

func TestConcurrentTokenize(t *testing.T) {
	ctx := context.Background()
	m := openTestMap(t, tokenize.Options{})
	var wg sync.WaitGroup
	results := make([][]string, 20)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				iss, err := m.Tokenize(ctx, fmt.Sprintf("u%d@example.com", i), "")
				if err != nil {
					t.Error(err)
					return
				}
				results[g] = append(results[g], iss.Local)
			}
		}()
	}
	wg.Wait()
	for g := 1; g < 20; g++ {
		for i := range results[g] {
			if results[g][i] != results[0][i] {
				t.Fatalf("goroutines disagree on the token of address %d", i)
			}
		}
	}
}
