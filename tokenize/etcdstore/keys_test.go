package etcdstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// countingKEK counts the unwraps that reach a node's KEK.
type countingKEK struct {
	vault.KEK
	unwraps atomic.Int64
}

func (c *countingKEK) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	c.unwraps.Add(1)
	return c.KEK.Unwrap(ctx, wrapped)
}

// keyNode is one node of the rotation tests: its store, its KEK (its own
// instance of the keyring file every node shares) and its map, which
// follows the store's keys.
type keyNode struct {
	s   *etcdstore.Store
	kek *countingKEK
	m   *tokenize.Map
}

func openKeyNode(t *testing.T, c *etcdtest.Cluster, prefix, node, keyFile string) keyNode {
	t.Helper()
	l, err := vault.OpenLocal(keyFile, vault.LocalOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	n := keyNode{s: mustOpenNode(t, c, prefix, node), kek: &countingKEK{KEK: l}}
	ring, err := vault.Load(context.Background(), n.kek, n.s)
	if err != nil {
		t.Fatal(err)
	}
	n.m = newMapOpts(t, n.s, ring, tokenize.Options{ReloadKeys: func(ctx context.Context, have *vault.Keyring) (*vault.Keyring, error) {
		return vault.Refresh(ctx, n.kek, n.s, have)
	}})
	return n
}

// TestKeyRotationReachesNodes runs two maps on one cluster with the same
// keyring file: a record key or token key version added through node A's
// store is used by node B without a restart, within a bounded time; a KEK
// rotation (a rewrap) costs B nothing.
func TestKeyRotationReachesNodes(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	prefix, keyFile := freshPrefix(), filepath.Join(t.TempDir(), "keyring.json")
	a := openKeyNode(t, c, prefix, "a", keyFile) // first: creates the keyring and the data keys
	b := openKeyNode(t, c, prefix, "b", keyFile)
	known := mustTokenize(t, a.m, "known@example.com")
	all := []string{known}

	// Record key: B seals new records under v2; the leader re-encrypts.
	if _, err := vault.AddVersion(ctx, a.kek, a.s, vault.PurposeRecord); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	tok := waitFor(t, 5*time.Second, "B sealing under record key v2", func(i int) (string, bool) {
		tok := mustTokenize(t, b.m, fmt.Sprintf("new-record-%d@example.com", i))
		return tok, recordKeyVersion(t, b.s, tok) == 2
	})
	t.Logf("record key v2 used by B %v after it was added on A", time.Since(begin).Round(time.Millisecond))
	all = append(all, tok)
	waitFor(t, 10*time.Second, "re-encryption under record key v2", func(int) (string, bool) {
		return "", !a.m.ReencryptPending() && !b.m.ReencryptPending() && recordKeyVersion(t, a.s, known) == 2
	})

	// Token key: new addresses on B get t2- tokens, known ones keep theirs.
	if _, err := vault.AddVersion(ctx, a.kek, a.s, vault.PurposeToken); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	tok = waitFor(t, 5*time.Second, "B deriving under token key v2", func(i int) (string, bool) {
		tok := mustTokenize(t, b.m, fmt.Sprintf("new-token-%d@example.com", i))
		return tok, strings.HasPrefix(tok, "t2-")
	})
	t.Logf("token key v2 used by B %v after it was added on A", time.Since(begin).Round(time.Millisecond))
	all = append(all, tok)
	for _, m := range []*tokenize.Map{a.m, b.m} {
		if got := mustTokenize(t, m, "known@example.com"); got != known {
			t.Errorf("a known address got %s after the token key rotation, had %s", got, known)
		}
	}

	// KEK rotation: the data keys are rewrapped, not changed.
	unwraps := b.kek.unwraps.Load()
	if _, err := vault.RotateKEK(ctx, a.kek, a.s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // B's watch has seen the rewrap by now
	if n := b.kek.unwraps.Load() - unwraps; n != 0 {
		t.Errorf("B unwrapped %d keys after a KEK rotation, want none", n)
	}
	all = append(all, mustTokenize(t, b.m, "after-kek@example.com"))
	for _, tok := range all {
		for name, m := range map[string]*tokenize.Map{"A": a.m, "B": b.m} {
			if _, err := m.Resolve(ctx, tok); err != nil {
				t.Errorf("%s resolving %s: %v", name, tok, err)
			}
		}
	}
}

func mustTokenize(t *testing.T, m *tokenize.Map, addr string) string {
	t.Helper()
	iss, err := m.Tokenize(context.Background(), addr, "")
	if err != nil {
		t.Fatal(err)
	}
	return iss.Local
}

// waitFor calls try with 0, 1, 2, … until it reports done, and returns
// its last value; it fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, try func(i int) (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for i := 0; ; i++ {
		v, done := try(i)
		if done {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordKeyVersion reads the record key version of a token's record from
// the record's header (tokenize/record.go: a format byte, then the
// version, big-endian).
func recordKeyVersion(t *testing.T, s tokenize.Store, local string) uint32 {
	t.Helper()
	var v uint32
	err := s.View(context.Background(), func(tx tokenize.ReadTx) error {
		raw, err := tx.Token(local)
		if err != nil || len(raw) < 5 {
			return fmt.Errorf("token %s: %d bytes, %v", local, len(raw), err)
		}
		v = binary.BigEndian.Uint32(raw[1:5])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
