package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lastEvent(t *testing.T, path string) string {
	recs := records(t, path)
	return recs[len(recs)-1].Event
}

func TestCheckpointEveryN(t *testing.T) {
	path := testPath(t)
	signer, keys := testKeys(t, "local:test")
	metrics := NewMetrics(nil)
	l := mustOpen(t, Options{Path: path, Signer: signer, CheckpointEvery: 10, Metrics: metrics})
	for round := 1; round <= 3; round++ {
		for i := range 10 {
			mustAppend(t, l, resolved(i))
		}
		waitFor(t, "a checkpoint", func() bool { return testutilCounter(metrics.checkpoints.WithLabelValues("ok")) == float64(round) })
	}
	mustClose(t, l)

	rep := verifyFile(t, path, keys)
	requireOK(t, rep)
	// Three by count, one on Close.
	if rep.Checkpoints != 4 || rep.LastCheckpoint != rep.Last.Seq || rep.UnsignedTail != 0 {
		t.Fatalf("report %+v", rep)
	}
	var seqs []uint64
	for _, rec := range records(t, path) {
		if rec.Event == Checkpoint {
			seqs = append(seqs, rec.Seq)
			if rec.Key != "local:test" || rec.Actor != "system" {
				t.Fatalf("checkpoint %+v", rec)
			}
		}
	}
	// The writer asks for a checkpoint after 10 records; an Append may land
	// while it is signed.
	for i := 1; i < len(seqs)-1; i++ {
		if gap := seqs[i] - seqs[i-1]; gap > 10+2 {
			t.Fatalf("checkpoints at %v: gap %d over CheckpointEvery", seqs, gap)
		}
	}
}

func TestCheckpointInterval(t *testing.T) {
	path := testPath(t)
	signer, keys := testKeys(t, "local:test")
	l := mustOpen(t, Options{Path: path, Signer: signer, CheckpointInterval: 20 * time.Millisecond})
	mustAppend(t, l, resolved(1))
	waitFor(t, "a timed checkpoint", func() bool { return lastEvent(t, path) == Checkpoint })
	// Nothing added: no further checkpoint.
	before := l.Head()
	time.Sleep(100 * time.Millisecond)
	if l.Head() != before {
		t.Fatalf("checkpoint written with no new records")
	}
	mustClose(t, l)
	requireOK(t, verifyFile(t, path, keys))
}

func TestExplicitCheckpoint(t *testing.T) {
	path := testPath(t)
	signer, keys := testKeys(t, "local:test")
	l := mustOpen(t, Options{Path: path, Signer: signer})
	mustAppend(t, l, resolved(1))
	if err := l.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	head := l.Head()
	if err := l.Checkpoint(t.Context()); err != nil || l.Head() != head {
		t.Fatalf("a second Checkpoint with nothing new wrote a record (%v)", err)
	}
	mustClose(t, l)
	rep := verifyFile(t, path, keys)
	requireOK(t, rep)
	if rep.Checkpoints != 2 { // explicit and Close
		t.Fatalf("%d checkpoints", rep.Checkpoints)
	}

	noSigner := mustOpen(t, Options{Path: testPath(t)})
	defer mustClose(t, noSigner)
	if err := noSigner.Checkpoint(t.Context()); !errors.Is(err, ErrNoSigner) {
		t.Fatalf("Checkpoint without signer: %v", err)
	}
}

func TestFailingSignerDoesNotFailAppend(t *testing.T) {
	path := testPath(t)
	local, keys := testKeys(t, "local:test")
	signer := &flakySigner{Signer: local}
	signer.fail.Store(true)
	metrics := NewMetrics(nil)
	l := mustOpen(t, Options{Path: path, Signer: signer, CheckpointEvery: 5, Metrics: metrics})
	for i := range 20 {
		mustAppend(t, l, resolved(i))
	}
	waitFor(t, "failed checkpoints counted", func() bool {
		return testutilCounter(metrics.checkpoints.WithLabelValues("error")) >= 1
	})
	if err := l.Checkpoint(t.Context()); err == nil {
		t.Fatal("Checkpoint with a failing signer returned no error")
	}
	if lastEvent(t, path) == Checkpoint {
		t.Fatal("a checkpoint was written by a failing signer")
	}

	// Vault is back: the next trigger signs.
	signer.fail.Store(false)
	if err := l.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	rep := verifyFile(t, path, keys)
	requireOK(t, rep)
	if rep.Checkpoints < 2 || rep.UnsignedTail != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestCloseWithFailingSigner(t *testing.T) {
	path := testPath(t)
	local, _ := testKeys(t, "local:test")
	signer := &flakySigner{Signer: local}
	signer.fail.Store(true)
	l := mustOpen(t, Options{Path: path, Signer: signer})
	mustAppend(t, l, resolved(1))
	if err := l.Close(t.Context()); err == nil {
		t.Fatal("Close hid the failed final checkpoint")
	}
	if lastEvent(t, path) != Stopped {
		t.Fatalf("last record %s", lastEvent(t, path))
	}
	requireOK(t, verifyFile(t, path, nil))
}

// TestCheckpointUnderLoad signs slowly while appends keep moving the head,
// so the writer has to re-sign holding its turn.
func TestCheckpointUnderLoad(t *testing.T) {
	path := testPath(t)
	local, keys := testKeys(t, "local:test")
	signer := &flakySigner{Signer: local, delay: 2 * time.Millisecond}
	l := mustOpen(t, Options{Path: path, Signer: signer, CheckpointEvery: 50})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				if _, err := l.Append(context.Background(), resolved(w*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustClose(t, l)
	rep := verifyFile(t, path, keys)
	requireOK(t, rep)
	// How many checkpoints fit depends on the machine (each costs two
	// slow signatures); at least one during the load and the final one.
	if rep.Checkpoints < 2 || rep.UnsignedTail != 0 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("%d checkpoints, %d Sign calls", rep.Checkpoints, signer.calls.Load())
}
