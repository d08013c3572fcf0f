package smtp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// TestSpool: small messages stay in memory; larger ones move to a 0600
// file without a name; every Reader starts over; writes end at the first
// Reader.
func TestSpool(t *testing.T) {
	for _, size := range []int{0, 10, 100, 1000} {
		dir := t.TempDir()
		sp := newSpool(dir, 100)
		want := bytes.Repeat([]byte("x"), size)
		for i := 0; i < size; i += 7 {
			if _, err := sp.Write(want[i:min(i+7, size)]); err != nil {
				t.Fatal(err)
			}
		}
		if sp.inFile() != (size > 100) {
			t.Fatalf("size %d: inFile = %v", size, sp.inFile())
		}
		if sp.inFile() {
			st, err := sp.file.Stat()
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("spool file: %v %v", st, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("spool file has a name: %v", entries)
			}
			// At rest only ciphertext: no run of the plaintext.
			sp.w.Flush()
			raw := make([]byte, size)
			if n, _ := sp.file.ReadAt(raw, 0); n != size || bytes.Contains(raw, []byte("xxxxxxxx")) {
				t.Fatalf("spool file: %d bytes, plaintext at rest", n)
			}
		}
		for range 2 {
			r, err := sp.Reader()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("size %d: read %d bytes, %v", size, len(got), err)
			}
		}
		if _, err := sp.Write([]byte("more")); !errors.Is(err, errSpoolRead) {
			t.Fatalf("write after read: %v", err)
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Reader(); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Reader after Close: %v", err)
		}
	}
}

// TestSpoolUnwritableDir: the temporary file cannot be created: an error,
// never a panic or a silent loss.
func TestSpoolUnwritableDir(t *testing.T) {
	sp := newSpool("/nonexistent/spool", 4)
	defer sp.Close()
	if _, err := sp.Write([]byte("0123456789")); err == nil {
		t.Fatal("no error")
	}
}

func TestAuthResultsField(t *testing.T) {
	got := authResultsField(`mx.test; spf=pass smtp.mailfrom=t@relay.example; dkim=fail reason="a; b" header.d=example.com; dmarc=none`)
	want := "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=t@relay.example;\r\n\tdkim=fail reason=\"a; b\" header.d=example.com;\r\n\tdmarc=none\r\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if authResultsField("") != "" {
		t.Fatal("empty value gave a field")
	}
}
