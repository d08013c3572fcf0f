package boltstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// lockFile takes the same exclusive flock bbolt holds on an open database,
// without reading the file. A missing file needs no lock.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", tokenize.ErrStore, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by another process (stop the proxy first)", tokenize.ErrStore, path)
		}
		return nil, fmt.Errorf("%w: lock %s: %w", tokenize.ErrStore, path, err)
	}
	return func() { f.Close() }, nil
}
