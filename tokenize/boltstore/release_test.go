package boltstore_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// TestOpensRelease1File opens a map file written by the release before the
// Store seam (testdata/release1, made with fixed keys): three tokens, one
// of them erased, and three creation records its trail never received.
// The file format is unchanged, so everything reads as it was written.
func TestOpensRelease1File(t *testing.T) {
	path := gunzip(t, "testdata/release1/tokenproxy.db.gz")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &storetest.Auditor{}
	m, err := tokenize.NewMap(s, releaseKeys(), tokenize.Options{Tenant: "release1", Audit: a,
		Format: tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: 16}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for addr, tok := range map[string]string{
		"Jane.Doe@Example.com": "t1-4u3ncrt4kmtchqoc@relay.company.example",
		"joe@example.org":      "t1-vbmvxaodpocx3v3m@relay.company.example",
	} {
		if e, err := m.Resolve(ctx, tok); err != nil || e.Original != addr || e.DisplayName != "Name of "+addr[:3] {
			t.Errorf("Resolve(%s) = %+v, %v; want %s", tok, e, err, addr)
		}
		if iss, err := m.Tokenize(ctx, addr, "Name of "+addr[:3]); err != nil || iss.Address != tok || iss.New {
			t.Errorf("Tokenize(%s) = %+v, %v; want the stored %s", addr, iss, err, tok)
		}
	}
	if _, err := m.Resolve(ctx, "t1-ucxsyt465o2hbrhj@relay.company.example"); !errors.Is(err, tokenize.ErrUnknownToken) {
		t.Errorf("the erased token resolves: %v", err)
	}
	if err := m.SyncAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Tokens(tokenize.EventCreated); len(got) != 3 {
		t.Errorf("creation records left in the old outbox: delivered %v, want 3", got)
	}
	keys, err := s.WrappedKeys(ctx)
	if err != nil || len(keys) != 1 || string(keys[0].Wrapped) != "wrapped-token-key" {
		t.Errorf("WrappedKeys = %+v, %v", keys, err)
	}
}

// releaseKeys are the fixed keys testdata/release1 was written with.
func releaseKeys() *vault.Keyring {
	key := func(b byte) []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = b + byte(i)
		}
		return k
	}
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: key(1)}, vault.PurposeRecord: {1: key(101)}})
}

func gunzip(t *testing.T, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tokenproxy.db")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
