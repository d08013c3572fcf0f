package audit

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentAppends(t *testing.T) {
	const workers, each = 50, 200
	path := testPath(t)
	l := mustOpen(t, Options{Path: path, Sync: true})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(t.Context(), resolved(w*each+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	head := l.Head()
	mustClose(t, l)

	recs := records(t, path)
	// Started, the appends, Stopped.
	if want := workers*each + 2; len(recs) != want {
		t.Fatalf("%d records, want %d", len(recs), want)
	}
	for i, rec := range recs {
		if rec.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, rec.Seq)
		}
	}
	if recs[0].Event != Started || recs[len(recs)-1].Event != Stopped {
		t.Fatalf("first %s, last %s", recs[0].Event, recs[len(recs)-1].Event)
	}
	if head.Seq != uint64(workers*each+1) {
		t.Fatalf("head before Close at seq %d", head.Seq)
	}
	rep := verifyFile(t, path, nil)
	requireOK(t, rep)
	if rep.Last.Seq != uint64(len(recs)) || rep.Last.Hash != recs[len(recs)-1].Hash {
		t.Fatalf("report last %+v", rep.Last)
	}
	fileHead, err := ReadHead(HeadPath(path))
	if err != nil || fileHead != rep.Last {
		t.Fatalf("head file %+v (%v), want %+v", fileHead, err, rep.Last)
	}
}

func TestAppendReturnsFilledRecords(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path, Now: fakeClock()})
	in := []Record{resolved(1), resolved(2)}
	out := mustAppend(t, l, in...)
	mustClose(t, l)
	if in[0].Seq != 0 || in[0].Hash != "" {
		t.Fatalf("Append changed the caller's records")
	}
	recs := records(t, path)
	for i, rec := range out {
		want := recs[i+1]
		if rec.Seq != want.Seq || rec.Hash != want.Hash || rec.Prev != want.Prev || !rec.Time.Equal(want.Time) {
			t.Fatalf("returned %+v, file has %+v", rec, want)
		}
	}
	if out[1].Prev != out[0].Hash || recs[0].Prev != zeroHash {
		t.Fatalf("chain not filled")
	}
	if out[0].Time.Location().String() != "UTC" {
		t.Fatalf("time not UTC")
	}
}

func TestRestart(t *testing.T) {
	path := testPath(t)
	signer, keys := testKeys(t, "local:test")
	for run := range 3 {
		l := mustOpen(t, Options{Path: path, Signer: signer, Sync: true})
		for i := range 10 {
			mustAppend(t, l, resolved(run*10+i))
		}
		mustClose(t, l)
	}
	rep := verifyFile(t, path, keys)
	requireOK(t, rep)
	// Per run: Started, 10 records, Stopped, checkpoint.
	if rep.Records != 3*13 || rep.Checkpoints != 3 || rep.LastCheckpoint != rep.Last.Seq || rep.UnsignedTail != 0 {
		t.Fatalf("report %+v", rep)
	}
	if !rep.SignaturesChecked {
		t.Fatal("signatures not checked")
	}
}

func TestOpenRepairsPartialLine(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	mustAppend(t, l, resolved(1), resolved(2))
	mustClose(t, l)

	// A crash in the middle of writing the next batch.
	partial := `{"seq":5,"time":"2025-01-02T03:04:05Z","event":"token.res`
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(partial)
	f.Close()

	rep := verifyFile(t, path, nil)
	if rep.OK() || rep.Problems[0].Kind != ProblemTruncated {
		t.Fatalf("Verify before repair: %+v", rep.Problems)
	}

	l = mustOpen(t, Options{Path: path})
	mustAppend(t, l, resolved(3))
	mustClose(t, l)
	recs := records(t, path)
	rec := recs[4]
	if rec.Event != Recovered || rec.Detail["dropped_bytes"] != strconv.Itoa(len(partial)) || rec.Seq != 5 {
		t.Fatalf("record after the crash: %+v (partial line is %d bytes)", rec, len(partial))
	}
	if recs[5].Event != Started {
		t.Fatalf("Started not after Recovered: %+v", recs[5])
	}
	requireOK(t, verifyFile(t, path, nil))
}

func TestOpenEmptyFileAndOnlyPartialLine(t *testing.T) {
	path := testPath(t)
	if err := os.MkdirAll(strings.TrimSuffix(path, "/trail.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"seq":1,"ti`), 0o600); err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, Options{Path: path})
	mustClose(t, l)
	recs := records(t, path)
	if len(recs) != 3 || recs[0].Event != Recovered || recs[0].Seq != 1 || recs[0].Prev != zeroHash {
		t.Fatalf("records %+v", recs)
	}
	requireOK(t, verifyFile(t, path, nil))
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	mustClose(t, l)
	for _, p := range []string{path, HeadPath(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", p, st.Mode().Perm())
		}
	}
	st, _ := os.Stat(strings.TrimSuffix(path, "/trail.jsonl"))
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", st.Mode().Perm())
	}
}

func TestOpenLocked(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	_, err := Open(t.Context(), Options{Path: path})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v", err)
	}
	mustClose(t, l)
	l = mustOpen(t, Options{Path: path}) // the lock went with Close
	mustClose(t, l)
}

func TestOpenRefusesTamperedTail(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, path string, lines [][]byte)
	}{
		{"last record edited", func(t *testing.T, path string, lines [][]byte) {
			last := len(lines) - 1
			lines[last] = []byte(strings.Replace(string(lines[last]), `"system"`, `"someone"`, 1))
			writeLines(t, path, lines)
		}},
		{"last records cut", func(t *testing.T, path string, lines [][]byte) {
			writeLines(t, path, lines[:len(lines)-2])
		}},
		{"last record replaced by a valid one", func(t *testing.T, path string, lines [][]byte) {
			rec, _, _ := parseLine(lines[len(lines)-1])
			rec.Actor = "someone"
			line, _ := encodeLine(&rec)
			lines[len(lines)-1] = line[:len(line)-1]
			writeLines(t, path, lines)
		}},
		{"garbage at the end", func(t *testing.T, path string, lines [][]byte) {
			writeLines(t, path, append(lines, []byte("not a record")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			l := mustOpen(t, Options{Path: path})
			mustAppend(t, l, resolved(1), resolved(2), resolved(3))
			mustClose(t, l)
			tt.tamper(t, path, readLines(t, path))
			before, _ := os.ReadFile(path)
			_, err := Open(t.Context(), Options{Path: path})
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open: %v", err)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Fatal("Open changed a tampered file")
			}
		})
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := mustOpen(t, Options{Path: testPath(t)})
	mustClose(t, l)
	if _, err := l.Append(t.Context(), resolved(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAppendCancelled(t *testing.T) {
	l := mustOpen(t, Options{Path: testPath(t)})
	defer mustClose(t, l)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(ctx, resolved(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
}
