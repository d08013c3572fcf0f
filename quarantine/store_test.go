package quarantine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/vault"
)

func testKeys(versions ...uint32) *vault.Keyring {
	set := map[uint32][]byte{}
	for _, v := range versions {
		set[v] = bytes.Repeat([]byte{byte(v)}, 32)
	}
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{vault.PurposeRecord: set})
}

const ref1, ref2 = "att-abcdefghijklmnop", "att-qrstuvwxyz234567"

func TestPutGetListDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, testKeys(1))
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("PK\x03\x04 a document naming jane.doe@example.com")
	if err := s.Put(ctx, Item{Ref: ref1, Kind: "office", Name: "letter.docx", Size: len(content)}, content); err != nil {
		t.Fatal(err)
	}
	// At rest: neither the content nor the file name in plaintext.
	raw, _ := os.ReadFile(filepath.Join(dir, ref1+".q"))
	if bytes.Contains(raw, []byte("jane.doe")) || bytes.Contains(raw, []byte("letter")) {
		t.Fatal("the quarantine file holds plaintext")
	}
	if fi, _ := os.Stat(filepath.Join(dir, ref1+".q")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	it, got, err := s.Get(ctx, ref1)
	if err != nil || !bytes.Equal(got, content) || it.Name != "letter.docx" || it.Kind != "office" || it.Created.IsZero() {
		t.Fatalf("Get = %+v %q %v", it, got, err)
	}
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	s.Put(ctx, Item{Ref: ref2, Kind: "pdf"}, []byte("%PDF"))
	items, err := s.List(ctx)
	if err != nil || len(items) != 2 || items[0].Ref != ref1 || items[1].Ref != ref2 {
		t.Fatalf("List = %+v %v", items, err)
	}
	if err := s.Delete(ctx, ref1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, ref1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	if err := s.Delete(ctx, ref1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := Open(dir, testKeys(1))
	for _, ref := range []string{"../etc/passwd", "att-ABC", "", "att-abcdefghijklmnop/../x"} {
		if err := s.Put(ctx, Item{Ref: ref}, nil); !errors.Is(err, ErrBadRef) {
			t.Errorf("Put(%q) = %v", ref, err)
		}
		if _, _, err := s.Get(ctx, ref); !errors.Is(err, ErrBadRef) {
			t.Errorf("Get(%q) = %v", ref, err)
		}
	}
	s.Put(ctx, Item{Ref: ref1}, []byte("x"))
	p := filepath.Join(dir, ref1+".q")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o600)
	if _, _, err := s.Get(ctx, ref1); !errors.Is(err, ErrDamaged) {
		t.Errorf("a tampered file: %v", err)
	}
	// A file moved to another reference does not open under it.
	os.WriteFile(filepath.Join(dir, ref2+".q"), b, 0o600)
	if _, _, err := s.Get(ctx, ref2); !errors.Is(err, ErrDamaged) {
		t.Errorf("a renamed file: %v", err)
	}
}

func TestKeyRotationAndSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old, _ := Open(dir, testKeys(1))
	old.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	old.Put(ctx, Item{Ref: ref1}, []byte("old"))
	s, _ := Open(dir, testKeys(1, 2)) // the record key rotated: old parts still open
	s.Put(ctx, Item{Ref: ref2}, []byte("new"))
	if _, got, err := s.Get(ctx, ref1); err != nil || string(got) != "old" {
		t.Fatalf("a part sealed under the previous record key: %q %v", got, err)
	}
	gone, err := s.Sweep(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || strings.Join(gone, ",") != ref1 {
		t.Fatalf("Sweep = %v %v", gone, err)
	}
	if items, _ := s.List(ctx); len(items) != 1 || items[0].Ref != ref2 {
		t.Fatalf("after Sweep: %+v", items)
	}
}
