package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TestDamagedLeafIsStoreError overwrites a leaf page of the tokens bucket
// of a real map file (a page OpenDB does not read, so the map opens) and
// checks that every read path reaching it returns tokenize.ErrStore instead of
// panicking, names no address, and leaves no read transaction open.
func TestDamagedLeafIsStoreError(t *testing.T) {
	ctx := context.Background()
	tm := openTestMap(t)
	const n = 300
	addrs := make([]string, n)
	toks := make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("customer%d@damaged.example", i)
		iss, err := tm.Tokenize(ctx, addrs[i], "")
		if err != nil {
			t.Fatal(err)
		}
		toks[i] = iss.Address
	}
	leaf, pageSize := tokensLeafPage(t, tm.db)
	tm.close()
	overwritePage(t, tm.path, leaf, pageSize)
	m := reopenTestMap(t, tm.path, tm.keys) // opens: the leaf is not read at open

	perToken := func(fn func(i int) error) func() (int, error) {
		return func() (int, error) {
			var failed int
			for i := range n {
				err := fn(i)
				if errors.Is(err, tokenize.ErrStore) {
					failed++
					continue
				}
				if err != nil {
					return failed, err
				}
			}
			return failed, nil
		}
	}
	for _, c := range []struct {
		name string
		run  func() (int, error) // how many calls failed with tokenize.ErrStore; another error
	}{
		{"resolve", perToken(func(i int) error { _, err := m.Resolve(ctx, toks[i]); return err })},
		{"inspect", perToken(func(i int) error { _, err := m.Inspect(ctx, toks[i]); return err })},
		{"tokenize", perToken(func(i int) error { _, err := m.Tokenize(ctx, addrs[i], ""); return err })},
		{"lookup", perToken(func(i int) error { _, err := m.Lookup(ctx, addrs[i]); return err })},
		{"each", func() (int, error) {
			err := m.Each(ctx, func(tokenize.Entry) error { return nil })
			if errors.Is(err, tokenize.ErrStore) {
				return 1, nil
			}
			return 0, err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panicked: %v", r)
				}
			}()
			failed, err := c.run()
			if err != nil {
				t.Fatalf("an error other than tokenize.ErrStore: %v", err)
			}
			if failed == 0 {
				t.Fatalf("no call failed with tokenize.ErrStore after leaf page %d was overwritten", leaf)
			}
			if open := m.db.bolt.Stats().OpenTxN; open != 0 {
				t.Errorf("%d read transactions left open", open)
			}
			t.Logf("%d calls failed with tokenize.ErrStore", failed)
		})
	}
	_, err := m.Resolve(ctx, toks[0])
	for i := 1; err == nil && i < n; i++ {
		_, err = m.Resolve(ctx, toks[i])
	}
	if msg := fmt.Sprint(err); !strings.Contains(msg, "corrupt") || strings.Contains(msg, "damaged.example") {
		t.Errorf("error should say the file is corrupt and name no address: %s", msg)
	}
}

// tokensLeafPage returns a leaf page of the tokens bucket, the middle
// child of the bucket's root, and the page size. A branch page is a
// 16-byte header (id, flags, count, overflow) then 16-byte elements (key
// position and size, 4 bytes each, then the child's page id).
func tokensLeafPage(t *testing.T, db *Store) (int, int) {
	t.Helper()
	pageSize := db.bolt.Info().PageSize
	var page []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketTokens).Root()
		if info, err := tx.Page(int(root)); err != nil || info == nil || info.Type != "branch" {
			return fmt.Errorf("tokens root page %d is %+v (%v): want a branch; too few tokens?", root, info, err)
		}
		raw, err := os.ReadFile(db.path)
		if err != nil {
			return err
		}
		page = raw[int(root)*pageSize : (int(root)+1)*pageSize]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := int(binary.LittleEndian.Uint16(page[10:]))
	elem := page[16+16*(count/2):]
	return int(binary.LittleEndian.Uint64(elem[8:])), pageSize
}

// overwritePage fills a page of the file with a byte pattern: its header
// then names another page id, which bbolt's page check asserts on.
func overwritePage(t *testing.T, path string, id, pageSize int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, pageSize), int64(id*pageSize)); err != nil {
		t.Fatal(err)
	}
}
