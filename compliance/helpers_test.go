package compliance

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// The trail helpers below are the audit package's own test helpers, for
// the tests that moved here with MapAudit.

func mustOpen(t testing.TB, opts audit.Options) *audit.Log {
	t.Helper()
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Hour // tests trigger checkpoints themselves
	}
	l, err := audit.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustClose(t testing.TB, l *audit.Log) {
	t.Helper()
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// records returns every record of the trail at path.
func records(t testing.TB, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	if err := audit.Scan(f, func(rec audit.Record, _ []byte) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// verifyFile verifies the trail at path against its head file, which
// must exist.
func verifyFile(t testing.TB, path string, keys audit.Keys) audit.Report {
	t.Helper()
	head, err := audit.ReadHead(audit.HeadPath(path))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := audit.Verify(f, &head, keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func requireOK(t testing.TB, rep audit.Report) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("Verify found problems: %+v", rep.Problems)
	}
}
