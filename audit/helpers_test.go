package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testKeys is a local signer and the Keys that verify it.
func testKeys(t testing.TB, keyID string) (Signer, Keys) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := make(Keys)
	keys.Add(keyID, 1, pub)
	return NewEd25519Signer(keyID, 1, priv), keys
}

func testPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "audit", "trail.jsonl")
}

func mustOpen(t testing.TB, opts Options) *Log {
	t.Helper()
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Hour // tests trigger checkpoints themselves
	}
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, recs ...Record) []Record {
	t.Helper()
	out, err := l.Append(context.Background(), recs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// resolved is a typical record.
func resolved(i int) Record {
	return Record{Event: TokenResolved, Actor: "route:outbound", Route: "outbound",
		Tokens: []string{"t1-abc@relay.example"}, Reason: "r" + strconv.Itoa(i), Outcome: "ok", Count: 1}
}

// readLines returns the file's lines without '\n'.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	var out [][]byte
	for _, l := range lines {
		if len(l) > 0 {
			out = append(out, bytes.TrimSuffix(l, []byte("\n")))
		}
	}
	return out
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func records(t testing.TB, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	if err := Scan(f, func(rec Record, _ []byte) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// verifyFile verifies path against its head file.
func verifyFile(t testing.TB, path string, keys Keys) Report {
	t.Helper()
	head, err := ReadHead(HeadPath(path))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Verify(f, &head, keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func requireOK(t testing.TB, rep Report) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("Verify found problems: %+v", rep.Problems)
	}
}

// fakeClock advances a second per call.
func fakeClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

// faultyFile is the write-failure seam: it fails Write (after writing
// half of the batch, as a full disk does), Sync or Truncate on demand.
type faultyFile struct {
	logFile
	mu                             sync.Mutex
	writeErr, syncErr, truncateErr error
}

func (f *faultyFile) set(write, sync, truncate error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeErr, f.syncErr, f.truncateErr = write, sync, truncate
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	err := f.writeErr
	f.mu.Unlock()
	if err != nil {
		n, _ := f.logFile.Write(p[:len(p)/2])
		return n, err
	}
	return f.logFile.Write(p)
}

func (f *faultyFile) Sync() error {
	f.mu.Lock()
	err := f.syncErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.logFile.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	f.mu.Lock()
	err := f.truncateErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.logFile.Truncate(size)
}

// flakySigner fails while fail is set and counts calls.
type flakySigner struct {
	Signer
	fail  atomic.Bool
	calls atomic.Int64
	delay time.Duration
}

func (s *flakySigner) Sign(ctx context.Context, msg []byte) (string, error) {
	s.calls.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if s.fail.Load() {
		return "", errors.New("vault: connection refused")
	}
	return s.Signer.Sign(ctx, msg)
}
