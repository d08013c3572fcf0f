package safeio

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, with mode perm (not reduced by the
// umask).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileFunc(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFileFunc replaces path with what fill writes to the file it is
// given: a new temporary file in path's directory, already of mode perm.
// fill must not close it. When fill fails, nothing is renamed and fill's
// error is returned as it is.
func WriteFileFunc(path string, perm os.FileMode, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	// Hidden, and named after the target, so that a leftover (after a
	// crash) says where it came from.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	err = f.Chmod(perm)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. It is best effort: some file systems
// cannot fsync a directory, and the rename itself has already succeeded,
// so failing here would report a replaced file as not written.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
