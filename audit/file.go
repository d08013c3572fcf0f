package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// logFile is what the log needs of its file. It is the test seam for
// write failures: a test wraps the real file (Options.wrapFile) to make
// Write or Sync fail with ENOSPC or EIO.
type logFile interface {
	Write(p []byte) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error // data sync: the records, and the size that covers them
	Close() error
}

// osFile is the real log file, opened O_APPEND so every batch lands at the
// end whatever the offset after a truncation.
type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }

// openLogFile opens (creating 0600) and locks the log file. The flock is
// per open file description, so a second Open in the same process is
// refused as well as one in another process.
func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("audit: lock %s: %w", path, err)
	}
	return f, nil
}

// flock takes an exclusive, non-blocking lock; closing the file releases it.
func flock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return err
	}
	return lockErr
}
