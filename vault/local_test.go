package vault_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/vault"
)

func openLocal(t *testing.T, path string, create bool) *vault.Local {
	t.Helper()
	l, err := vault.OpenLocal(path, vault.LocalOptions{Create: create})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocalFirstStartThenRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "keyring.json")
	var logs logBuffer
	l, err := vault.OpenLocal(path, vault.LocalOptions{Create: true, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "evaluation only") {
		t.Fatalf("no evaluation warning logged: %s", logs.String())
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode(), err)
	}
	store := newMemStore()
	first := mustLoad(t, l, store)
	assertWrappedPrefix(t, store, "local:")
	logs = logBuffer{}
	l2, err := vault.OpenLocal(path, vault.LocalOptions{Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "evaluation only") {
		t.Fatal("the warning must repeat at every start")
	}
	assertSameKeys(t, first, mustLoad(t, l2, store))
	raw, _ := os.ReadFile(path)
	for _, p := range vault.Purposes {
		_, k := first.Current(p)
		if strings.Contains(string(raw), string(k)) {
			t.Fatal("a data key is stored in the key file")
		}
	}
}

func TestLocalRotateKEK(t *testing.T) {
	ctx := context.Background()
	l := openLocal(t, filepath.Join(t.TempDir(), "k.json"), true)
	store := newMemStore()
	before := mustLoad(t, l, store)
	if _, err := vault.RotateKEK(ctx, l, store); err != nil {
		t.Fatal(err)
	}
	assertWrappedPrefix(t, store, "local:")
	keys, _ := store.WrappedKeys(ctx)
	for _, k := range keys {
		if !strings.Contains(string(k.Wrapped), ":v2:") {
			t.Errorf("%s key not rewrapped under KEK v2: %.30s", k.Purpose, k.Wrapped)
		}
	}
	assertSameKeys(t, before, mustLoad(t, l, store))
	v, err := vault.AddVersion(ctx, l, store, vault.PurposeRecord)
	if err != nil || v != 2 {
		t.Fatalf("AddVersion = %d, %v", v, err)
	}
	if cur, _ := mustLoad(t, l, store).Current(vault.PurposeRecord); cur != 2 {
		t.Fatalf("current record key v%d, want v2", cur)
	}
}

func TestLocalKeyFileProblems(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	openLocal(t, good, true)
	data, _ := os.ReadFile(good)
	write := func(name string, content []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, mode)
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing without create", filepath.Join(dir, "missing.json"), "does not exist"},
		{"group readable", write("wide.json", data, 0o640), "chmod 600"},
		{"not json", write("junk.json", []byte("hello"), 0o600), "not a tokenproxy keyring"},
		{"wrong format", write("fmt.json", []byte(`{"format":"other","id":"x","current":1,"keys":{"1":"AAAA"}}`), 0o600), "format"},
		{"short key", write("short.json", []byte(`{"format":"tokenproxy-local-keyring/1","id":"x","current":1,"keys":{"1":"AAAA"}}`), 0o600), "256-bit"},
		{"empty", write("empty.json", nil, 0o600), "not a tokenproxy keyring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vault.OpenLocal(tt.path, vault.LocalOptions{})
			if !errors.Is(err, vault.ErrKeyFile) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenLocal = %v, want ErrKeyFile mentioning %q", err, tt.want)
			}
		})
	}
}

// TestLocalWrongKeyFile: keys wrapped by one keyring cannot be unwrapped
// with another, and the error says to restore the original file.
func TestLocalWrongKeyFile(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore()
	mustLoad(t, openLocal(t, filepath.Join(dir, "a.json"), true), store)
	_, err := vault.Load(context.Background(), openLocal(t, filepath.Join(dir, "b.json"), true), store)
	if !errors.Is(err, vault.ErrKeyFile) || !strings.Contains(err.Error(), "restore the original key file") {
		t.Fatalf("Load = %v", err)
	}
}

func TestLocalTamperedWrappedKey(t *testing.T) {
	ctx := context.Background()
	l := openLocal(t, filepath.Join(t.TempDir(), "k.json"), true)
	store := newMemStore()
	mustLoad(t, l, store)
	keys, _ := store.WrappedKeys(ctx)
	// Swap one base64 character for another valid one: flipping a bit of
	// the text could produce a non-base64 byte ('-' ^ 1 = ',') and test
	// the decoder instead of the AEAD.
	w := []byte(string(keys[0].Wrapped))
	i := len(w) - 10
	if w[i] == 'A' {
		w[i] = 'B'
	} else {
		w[i] = 'A'
	}
	keys[0].Wrapped = w
	store.PutWrappedKeys(ctx, keys[:1])
	if _, err := vault.Load(ctx, l, store); !errors.Is(err, vault.ErrKeyFile) || !strings.Contains(err.Error(), "authentication") {
		t.Fatalf("Load = %v", err)
	}
}

// TestLocalForeignKEK: a node whose keyring file is not the one that
// wrapped the map's keys refuses them with ErrForeignKEK, whose text names
// the cluster's rule (the same keyring file on every node).
func TestLocalForeignKEK(t *testing.T) {
	dir := t.TempDir()
	store := newMemStore()
	mustLoad(t, openLocal(t, filepath.Join(dir, "a.json"), true), store)
	_, err := vault.Load(context.Background(), openLocal(t, filepath.Join(dir, "b.json"), true), store)
	if !errors.Is(err, vault.ErrForeignKEK) || !strings.Contains(err.Error(), "every node needs the same Vault transit key") {
		t.Fatalf("Load = %v", err)
	}
}

// TestLocalSharedFileRotation: two nodes read one keyring file (the
// evaluation cluster); after `keys rotate` on one (a KEK version and a
// data key version wrapped under it), the other unwraps the new data key
// by reading the file again.
func TestLocalSharedFileRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.json")
	a := openLocal(t, path, true)
	store := newMemStore()
	mustLoad(t, a, store)
	b := openLocal(t, path, false)
	have := mustLoad(t, b, store)
	if _, err := vault.RotateKEK(ctx, a, store); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AddVersion(ctx, a, store, vault.PurposeRecord); err != nil {
		t.Fatal(err)
	}
	got, err := vault.Refresh(ctx, b, store, have)
	if err != nil {
		t.Fatalf("Refresh on the other node: %v", err)
	}
	if v, _ := got.Current(vault.PurposeRecord); v != 2 {
		t.Fatalf("record key v%d after Refresh, want v2", v)
	}
}
