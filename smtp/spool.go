package smtp

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
)

// spoolMemBytes is how much of a message a spool keeps in memory before it
// moves to a file: most mail is smaller, and a session must not hold tens
// of MiB of a large attachment in memory.
const spoolMemBytes = 1 << 20

// spool holds a message that must be read twice: the inbound route's
// client data (verified, then rewritten) and the outbound route's rewritten
// message (signed, then relayed). It keeps up to memMax bytes in memory,
// then moves to a 0600 temporary file in dir ("" = os.TempDir()).
//
// The file holds ciphertext only (AES-256-CTR under a key made for this
// spool and kept in memory): no customer address is ever at rest in clear
// (DESIGN.md invariant 1), not even in freed disk blocks. Its name is
// removed as soon as it is created, so a crash leaves nothing to find;
// where the system cannot remove an open file, Close removes it.
type spool struct {
	dir    string
	memMax int
	mem    bytes.Buffer
	file   *os.File
	w      *bufio.Writer
	block  cipher.Block // the file's key
	iv     []byte
	named  bool // the file's name still exists: Close removes it
	read   bool // Reader was called: the spool is complete
	closed bool
}

// errSpoolRead: a spool is written once, then read.
var errSpoolRead = errors.New("smtp: spool: write after read")

func newSpool(dir string, memMax int) *spool {
	return &spool{dir: dir, memMax: memMax}
}

// Write appends to the spool.
func (s *spool) Write(p []byte) (int, error) {
	switch {
	case s.closed:
		return 0, os.ErrClosed
	case s.read:
		return 0, errSpoolRead
	}
	if s.file == nil && s.mem.Len()+len(p) <= s.memMax {
		return s.mem.Write(p)
	}
	if s.file == nil {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	return s.w.Write(p)
}

// toFile moves what is in memory to a new temporary file.
func (s *spool) toFile() error {
	f, err := os.CreateTemp(s.dir, "tokenproxy-spool-*") // 0600
	if err != nil {
		return fmt.Errorf("smtp: spool: %w", err)
	}
	s.file, s.named = f, os.Remove(f.Name()) != nil
	if err := s.newKey(); err != nil {
		return err
	}
	enc := cipher.StreamWriter{S: cipher.NewCTR(s.block, s.iv), W: f}
	s.w = bufio.NewWriterSize(enc, 64<<10)
	if _, err := s.mem.WriteTo(s.w); err != nil {
		return fmt.Errorf("smtp: spool: %w", err)
	}
	s.mem = bytes.Buffer{}
	return nil
}

// Reader returns the spooled bytes from the start; after it the spool takes
// no more writes. Each call starts over: a reader is valid until the next
// Reader or Close.
func (s *spool) Reader() (io.Reader, error) {
	if s.closed {
		return nil, os.ErrClosed
	}
	s.read = true
	if s.file == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("smtp: spool: %w", err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("smtp: spool: %w", err)
	}
	return cipher.StreamReader{S: cipher.NewCTR(s.block, s.iv), R: s.file}, nil
}

// newKey makes the file's key and IV: random, used for this file only.
func (s *spool) newKey() error {
	key := make([]byte, 32)
	s.iv = make([]byte, aes.BlockSize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("smtp: spool: %w", err)
	}
	if _, err := rand.Read(s.iv); err != nil {
		return fmt.Errorf("smtp: spool: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("smtp: spool: %w", err)
	}
	s.block = block
	return nil
}

// Close frees the memory and closes (and removes) the file.
func (s *spool) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.mem = bytes.Buffer{}
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if s.named {
		if rerr := os.Remove(s.file.Name()); err == nil {
			err = rerr
		}
	}
	return err
}

// inFile reports whether the spool has moved to a file (for tests).
func (s *spool) inFile() bool { return s.file != nil }
