package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckFile opens a database file read-only and checks that it is a
// whole, consistent token map: bbolt's page consistency check and the
// buckets of a map. An online backup that was cut short fails here.
func CheckFile(path string) (err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged pages
			err = corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	if err := checkLength(path); err != nil {
		return corrupt(path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return corrupt(path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			return corrupt(path, cerr)
		}
		for _, name := range [][]byte{bucketMeta, bucketTokens} {
			if tx.Bucket(name) == nil {
				return corrupt(path, fmt.Errorf("bucket %s missing", name))
			}
		}
		return nil
	})
}

// checkLength compares the file's length with the page count its meta
// pages claim. bbolt maps the file and would fault (an unrecoverable
// SIGBUS, not a panic) reading a page past the end of a cut file.
//
// Layout (bbolt's page and meta structs): a 16-byte page header, then the
// meta: magic, version, page size (uint32 each), flags, root bucket (16
// bytes), freelist page (uint64), then pgid, the page count.
func checkLength(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	var hdr [64]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return errors.New("too short for a meta page")
	}
	pageSize := int64(binary.LittleEndian.Uint32(hdr[24:]))
	if pageSize < 512 || pageSize > 1<<20 {
		return errors.New("meta page names no plausible page size")
	}
	for i := int64(0); i < 2; i++ {
		var meta [64]byte
		if _, err := f.ReadAt(meta[:], i*pageSize); err != nil {
			return fmt.Errorf("meta page %d: %w", i, err)
		}
		pages := int64(binary.LittleEndian.Uint64(meta[56:]))
		if pages*pageSize > st.Size() {
			return fmt.Errorf("file is %d bytes but meta page %d counts %d pages of %d: it was cut short", st.Size(), i, pages, pageSize)
		}
	}
	return nil
}
