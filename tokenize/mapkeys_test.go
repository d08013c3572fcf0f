package tokenize_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

// withVersion returns ring plus a new version of purpose p.
func withVersion(ring *vault.Keyring, p vault.Purpose) *vault.Keyring {
	sets := map[vault.Purpose]map[uint32][]byte{}
	for _, q := range vault.Purposes {
		sets[q] = map[uint32][]byte{}
		for _, v := range ring.Versions(q) {
			sets[q][v], _ = ring.Key(q, v)
		}
	}
	cur, _ := ring.Current(p)
	sets[p][cur+1] = randomKey()
	return vault.NewKeyring(sets)
}

// TestUpdateKeysWhileServing swaps keyrings while sessions tokenize and
// resolve (run with -race): every answer is consistent, known addresses
// keep their tokens, new ones get the newest token key, new records the
// newest record key.
func TestUpdateKeysWhileServing(t *testing.T) {
	ctx := context.Background()
	tm := openTestMap(t, tokenize.Options{})
	known, err := tm.Tokenize(ctx, "known@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				iss, err := tm.Tokenize(ctx, fmt.Sprintf("w%d-%d@example.com", w, i), "")
				if err == nil {
					_, err = tm.Resolve(ctx, iss.Address)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ring := tm.keys
	for range 3 {
		ring = withVersion(withVersion(ring, vault.PurposeRecord), vault.PurposeToken)
		if err := tm.UpdateKeys(ring); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	again, err := tm.Tokenize(ctx, "known@example.com", "")
	if err != nil || again.Local != known.Local {
		t.Fatalf("known address: %v, %v; had %s", again.Local, err, known.Local)
	}
	fresh, err := tm.Tokenize(ctx, "fresh@example.com", "")
	if err != nil || !strings.HasPrefix(fresh.Local, "t4-") {
		t.Fatalf("new address: %v, %v; want a t4- token", fresh.Local, err)
	}
	if v := binary.BigEndian.Uint32(tm.stored(t, fresh.Local)[1:5]); v != 4 {
		t.Errorf("new record sealed under record key v%d, want v4", v)
	}
	if err := tm.UpdateKeys(tm.keys); !errors.Is(err, vault.ErrNoKey) {
		t.Errorf("UpdateKeys with an older keyring = %v, want ErrNoKey", err)
	}
}
