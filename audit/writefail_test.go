package audit

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// openFaulty opens a log whose file fails on demand.
func openFaulty(t *testing.T, path string, sync bool) (*Log, *faultyFile) {
	t.Helper()
	var ff *faultyFile
	l := mustOpen(t, Options{Path: path, Sync: sync, wrapFile: func(f logFile) logFile {
		ff = &faultyFile{logFile: f}
		return ff
	}})
	return l, ff
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestWriteFailureIsUndone(t *testing.T) {
	tests := []struct {
		name        string
		write, sync error
	}{
		{"disk full mid-write", syscall.ENOSPC, nil},
		{"sync fails", nil, syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			metrics := NewMetrics(nil)
			var ff *faultyFile
			l := mustOpen(t, Options{Path: path, Sync: true, Metrics: metrics, wrapFile: func(f logFile) logFile {
				ff = &faultyFile{logFile: f}
				return ff
			}})
			mustAppend(t, l, resolved(1))
			size, head := fileSize(t, path), l.Head()

			ff.set(tt.write, tt.sync, nil)
			_, err := l.Append(t.Context(), resolved(2), resolved(3), resolved(4))
			cause := tt.write
			if cause == nil {
				cause = tt.sync
			}
			if !errors.Is(err, ErrWrite) || !errors.Is(err, cause) {
				t.Fatalf("Append: %v", err)
			}
			if got := fileSize(t, path); got != size {
				t.Fatalf("file is %d bytes after the failed batch, was %d", got, size)
			}
			if l.Head() != head {
				t.Fatalf("head moved on a failed batch")
			}
			if err := l.Err(); !errors.Is(err, ErrWrite) {
				t.Fatalf("Err after a failed batch = %v, want ErrWrite", err)
			}
			if got := testutilCounter(metrics.writeErrors); got != 1 {
				t.Fatalf("write errors %v", got)
			}

			ff.set(nil, nil, nil)
			out := mustAppend(t, l, resolved(5))
			if err := l.Err(); err != nil {
				t.Fatalf("Err after a good batch = %v", err)
			}
			if out[0].Seq != head.Seq+1 || out[0].Prev != head.Hash {
				t.Fatalf("after the fault: seq %d prev %s, want %d %s", out[0].Seq, out[0].Prev, head.Seq+1, head.Hash)
			}
			mustClose(t, l)
			requireOK(t, verifyFile(t, path, nil))
		})
	}
}

func TestWriteFailureNotUndoneFailsLog(t *testing.T) {
	path := testPath(t)
	l, ff := openFaulty(t, path, false)
	mustAppend(t, l, resolved(1))

	ff.set(syscall.ENOSPC, nil, syscall.EIO)
	// Three lines of equal length: half the batch ends mid-line.
	if _, err := l.Append(t.Context(), resolved(2), resolved(3), resolved(4)); !errors.Is(err, ErrWrite) {
		t.Fatalf("Append: %v", err)
	}
	ff.set(nil, nil, nil)
	if _, err := l.Append(t.Context(), resolved(4)); !errors.Is(err, ErrWrite) {
		t.Fatalf("Append on a failed log: %v", err)
	}
	if err := l.Close(t.Context()); !errors.Is(err, ErrWrite) {
		t.Fatalf("Close on a failed log: %v", err)
	}

	// The half batch is still in the file; a restart repairs it.
	l = mustOpen(t, Options{Path: path})
	mustAppend(t, l, resolved(5))
	mustClose(t, l)
	recs := records(t, path)
	found := false
	for _, rec := range recs {
		found = found || rec.Event == Recovered
	}
	if !found {
		t.Fatalf("no Recovered record after restart: %+v", recs)
	}
	requireOK(t, verifyFile(t, path, nil))
}
