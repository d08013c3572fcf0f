package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileFunc: the target gets what fill wrote and the mode asked
// for; a failure anywhere leaves the old target (or none) and no
// temporary file.
func TestWriteFileFunc(t *testing.T) {
	errFill := errors.New("fill failed")
	tests := []struct {
		name    string
		old     string // "" for no previous file
		perm    os.FileMode
		fill    func(f *os.File) error
		wantErr error
		want    string // the target's content afterwards; "" for none
	}{
		{name: "new file", perm: 0o600, fill: write("new"), want: "new"},
		{name: "replaces", old: "old", perm: 0o644, fill: write("new"), want: "new"},
		{name: "empty", old: "old", perm: 0o600, fill: write(""), want: ""},
		{name: "failing fill leaves nothing", perm: 0o600, fill: failAfter("half", errFill), wantErr: errFill},
		{name: "failing fill keeps the old file", old: "old", perm: 0o600, fill: failAfter("half", errFill), wantErr: errFill, want: "old"},
		{name: "fill closing the file fails", old: "old", perm: 0o600, fill: func(f *os.File) error { return f.Close() }, wantErr: os.ErrClosed, want: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteFileFunc(path, tt.perm, tt.fill)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			assertOnly(t, dir, tt.old != "" || tt.wantErr == nil)
			got, rerr := os.ReadFile(path)
			if (tt.old != "" || tt.wantErr == nil) && (rerr != nil || string(got) != tt.want) {
				t.Errorf("content %q (%v), want %q", got, rerr, tt.want)
			}
			if tt.wantErr == nil {
				assertMode(t, path, tt.perm)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "secret" {
		t.Errorf("content %q, %v", got, err)
	}
	assertMode(t, path, 0o600)
}

// TestWriteFileNoDirectory: a missing directory fails before anything is
// written.
func TestWriteFileNoDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "file")
	if err := WriteFile(path, []byte("x"), 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

// TestWriteFileOverDirectory: a rename that fails removes the temporary
// file.
func TestWriteFileOverDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("x"), 0o600); err == nil {
		t.Fatal("renaming over a non-empty directory succeeded")
	}
	assertOnly(t, dir, true)
}

func write(s string) func(*os.File) error {
	return func(f *os.File) error {
		_, err := f.WriteString(s)
		return err
	}
}

func failAfter(s string, err error) func(*os.File) error {
	return func(f *os.File) error {
		if _, werr := f.WriteString(s); werr != nil {
			return werr
		}
		return err
	}
}

// assertOnly checks that dir holds the target alone (target true) or
// nothing at all: no temporary file is left behind.
func assertOnly(t *testing.T, dir string, target bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if target {
		want = 1
	}
	if len(entries) != want {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want %d entries", names, want)
	}
}

func assertMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), perm)
	}
}
