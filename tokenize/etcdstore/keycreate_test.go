package etcdstore_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestKeysCreatedOnce: nodes starting at once on an empty map, or rotating
// at once, never overwrite each other's data keys (vault.KeyCreator): every
// node ends with the same keys, and concurrent rotations get distinct
// versions.
func TestKeysCreatedOnce(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	prefix := freshPrefix()
	kek, err := vault.OpenLocal(filepath.Join(t.TempDir(), "keyring.json"), vault.LocalOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 4
	stores := make([]vault.Store, nodes)
	for i := range stores {
		stores[i] = openStore(t, c, prefix, string(rune('a'+i)))
	}
	rings := make([]*vault.Keyring, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := vault.Load(ctx, kek, stores[i])
			if err != nil {
				t.Error(err)
			}
			rings[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, p := range vault.Purposes {
		_, first := rings[0].Current(p)
		for i, r := range rings[1:] {
			if _, k := r.Current(p); !bytes.Equal(k, first) {
				t.Fatalf("node %d unwrapped another %s key than node 0: a concurrent first start overwrote a key", i+1, p)
			}
		}
	}
	versions := make([]uint32, nodes)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := vault.AddVersion(ctx, kek, stores[i], vault.PurposeRecord)
			if err != nil {
				t.Error(err)
			}
			versions[i] = v
		}()
	}
	wg.Wait()
	slices.Sort(versions)
	if !slices.Equal(versions, []uint32{2, 3, 4, 5}) {
		t.Fatalf("concurrent rotations got versions %v, want 2..5 each once", versions)
	}
}
