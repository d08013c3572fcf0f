package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// writeTrail writes records to a new trail at path, the i-th at base+at[i].
func writeTrail(t *testing.T, path string, base time.Time, at []time.Duration, recs []audit.Record) {
	t.Helper()
	i := 0
	l, err := audit.Open(context.Background(), audit.Options{Path: path, Now: func() time.Time {
		return base.Add(at[min(i, len(at)-1)])
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i = range recs {
		if _, err := l.Append(context.Background(), recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	i = len(at) - 1
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func created(tok, ref string) audit.Record {
	return audit.Record{Event: audit.TokenCreated, Tokens: []string{tok}, Detail: map[string]string{"ref": ref}}
}

// TestMergeTrails: records of two trails come out in time order, a ref
// the survivor delivered again (node b re-delivering node a's r1) once,
// and the duplicates are counted and listed once each.
func TestMergeTrails(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s := time.Second
	writeTrail(t, filepath.Join(dir, "a.jsonl"), base, []time.Duration{1 * s, 3 * s, 5 * s, 9 * s},
		[]audit.Record{created("t1-aaa@r.example", "a/1"), created("t1-bbb@r.example", "a/2"), {Event: audit.Backup}})
	writeTrail(t, filepath.Join(dir, "b.jsonl"), base, []time.Duration{2 * s, 4 * s, 6 * s, 8 * s},
		[]audit.Record{created("t1-ccc@r.example", "b/1"), created("t1-bbb@r.example", "a/2"), created("t1-ddd@r.example", "b/2")})
	files, err := trailFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var times []time.Time
	dups := 0
	for l, err := range mergeTrails(context.Background(), files, &dups) {
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, l.rec.Time)
		if l.rec.Event == audit.TokenCreated {
			got = append(got, l.node+":"+l.rec.Detail["ref"])
		}
	}
	want := []string{"a:a/1", "b:b/1", "a:a/2", "b:b/2"}
	if !slices.Equal(got, want) || dups != 1 {
		t.Fatalf("merged creations %v (%d left out), want %v (1 left out)", got, dups, want)
	}
	if !slices.IsSortedFunc(times, func(x, y time.Time) int { return x.Compare(y) }) {
		t.Fatalf("merged records out of time order: %v", times)
	}
	sc, err := scanCluster(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if d := sc.duplicates(); !slices.Equal(d, []string{"a/2"}) || !slices.Equal(sc.refs["a/2"], []string{"a", "b"}) {
		t.Fatalf("duplicates %v (%v), want [a/2] delivered by a and b", d, sc.refs["a/2"])
	}
	if !sc.created["t1-ddd"] || len(sc.created) != 4 {
		t.Fatalf("created %v", sc.created)
	}
}
