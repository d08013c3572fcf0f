package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
)

// TestOnCheckpoint: every checkpoint, Close's included, hands its signed
// head to the hook; the head verifies with the keys, names the last
// record of the trail, and a trail cut before it fails Verify against it.
func TestOnCheckpoint(t *testing.T) {
	signer, keys := testKeys(t, "k")
	var mu sync.Mutex
	var heads []SignedHead
	path := testPath(t)
	l := mustOpen(t, Options{Path: path, Signer: signer, OnCheckpoint: func(h SignedHead) {
		mu.Lock()
		heads = append(heads, h)
		mu.Unlock()
	}})
	mustAppend(t, l, Record{Event: TokenCreated, Tokens: []string{"t1"}})
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Record{Event: TokenCreated, Tokens: []string{"t2"}})
	mustClose(t, l)

	mu.Lock()
	defer mu.Unlock()
	if len(heads) != 2 {
		t.Fatalf("%d heads, want 2 (explicit checkpoint, Close's)", len(heads))
	}
	last := heads[1]
	if err := last.Check(keys); err != nil {
		t.Fatal(err)
	}
	forged := last
	forged.Seq++
	if err := forged.Check(keys); !errors.Is(err, ErrHeadSignature) {
		t.Fatalf("a head with another seq: %v, want ErrHeadSignature", err)
	}
	h, err := ReadHead(HeadPath(path))
	if err != nil || h != last.Head() {
		t.Fatalf("head file %+v (%v), published %+v", h, err, last.Head())
	}

	// Cut the last record (Close's checkpoint) and its head file: the
	// trail still verifies alone, not against the published head.
	b, _ := os.ReadFile(path)
	cut := b[:len(b)-1]
	cut = cut[:bytes.LastIndexByte(cut, '\n')+1]
	rep, err := Verify(bytes.NewReader(cut), nil, keys)
	if err != nil || !rep.OK() {
		t.Fatalf("cut trail alone: %+v %v", rep.Problems, err)
	}
	head := last.Head()
	rep, _ = Verify(bytes.NewReader(cut), &head, keys)
	if rep.OK() || rep.Problems[0].Kind != ProblemTruncated {
		t.Fatalf("cut trail against the published head: %+v, want truncated", rep.Problems)
	}
}
