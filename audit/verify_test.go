package audit

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
)

// trail writes a known trail: Started (1), records 2..11, a checkpoint
// (12), records 13..22, Stopped (23), the Close checkpoint (24). Line i+1
// holds seq i+1.
func trail(t *testing.T, signer Signer) (lines [][]byte, head Head) {
	t.Helper()
	path := testPath(t)
	l := mustOpen(t, Options{Path: path, Signer: signer, CheckpointEvery: 1 << 30})
	for i := range 10 {
		mustAppend(t, l, resolved(i))
	}
	if err := l.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		mustAppend(t, l, resolved(i))
	}
	mustClose(t, l)
	head, err := ReadHead(HeadPath(path))
	if err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, path)
	if len(lines) != 24 || head.Seq != 24 {
		t.Fatalf("trail has %d lines, head %d", len(lines), head.Seq)
	}
	return lines, head
}

func join(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return b
}

func mustParse(t *testing.T, line []byte) Record {
	t.Helper()
	rec, _, err := parseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mustEncode(t *testing.T, rec Record) []byte {
	t.Helper()
	line, err := encodeLine(&rec)
	if err != nil {
		t.Fatal(err)
	}
	return line[:len(line)-1]
}

// rechain rewrites the trail from line index from on with a correct chain,
// as someone with write access but without the checkpoint key would:
// checkpoints are re-signed with the attacker's own key.
func rechain(t *testing.T, lines [][]byte, from int, attacker Signer) ([][]byte, Head) {
	t.Helper()
	out := slices.Clone(lines)
	prev := mustParse(t, out[from-1]).Hash
	var last Record
	for i := from; i < len(out); i++ {
		rec := mustParse(t, out[i])
		rec.Prev = prev
		if rec.Event == Checkpoint {
			rec.Key = attacker.KeyID()
			rec.Sig, _ = attacker.Sign(context.Background(), CheckpointMessage(rec.Seq, rec.Prev))
		}
		out[i] = mustEncode(t, rec)
		last = mustParse(t, out[i])
		prev = last.Hash
	}
	return out, Head{Seq: last.Seq, Hash: last.Hash}
}

func editReason(t *testing.T, line []byte) []byte {
	t.Helper()
	edited := bytes.Replace(line, []byte(`"reason":"r`), []byte(`"reason":"X`), 1)
	if bytes.Equal(edited, line) {
		t.Fatalf("nothing to edit in %s", line)
	}
	return edited
}

func TestVerifyDetectsTampering(t *testing.T) {
	signer, keys := testKeys(t, "local:test")
	attacker, _ := testKeys(t, "local:test") // same key ID, another key
	stranger, _ := testKeys(t, "local:attacker")
	lines, head := trail(t, signer)

	type tampered struct {
		file []byte
		head Head
		keys Keys
	}
	tests := []struct {
		name     string
		tamper   func(t *testing.T) tampered
		kinds    []string // the problem kinds found, in order, duplicates removed
		line     int      // the line of the first problem
		checked  bool     // SignaturesChecked
		lastGood uint64   // LastCheckpoint
	}{
		{"untouched", func(t *testing.T) tampered {
			return tampered{join(lines), head, keys}
		}, nil, 0, true, 24},
		{"head lags the file (crash)", func(t *testing.T) tampered {
			rec := mustParse(t, lines[9])
			return tampered{join(lines), Head{Seq: rec.Seq, Hash: rec.Hash}, keys}
		}, nil, 0, true, 24},
		{"record edited", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			l[4] = editReason(t, l[4])
			return tampered{join(l), head, keys}
		}, []string{ProblemHash}, 5, true, 24},
		{"record edited and rehashed", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			rec := mustParse(t, l[4])
			rec.Reason = "X"
			l[4] = mustEncode(t, rec)
			return tampered{join(l), head, keys}
		}, []string{ProblemChain}, 6, true, 24},
		{"record deleted", func(t *testing.T) tampered {
			l := slices.Delete(slices.Clone(lines), 4, 5)
			return tampered{join(l), head, keys}
		}, []string{ProblemSequence, ProblemChain}, 5, true, 24},
		{"first record deleted", func(t *testing.T) tampered {
			return tampered{join(lines[1:]), head, keys}
		}, []string{ProblemSequence, ProblemChain}, 1, true, 24},
		{"record inserted with a correct hash", func(t *testing.T) tampered {
			before := mustParse(t, lines[3])
			fake := mustEncode(t, Record{Seq: before.Seq + 1, Time: before.Time, Event: ComplianceLookup,
				Actor: "officer:mallory", Outcome: "not_found", Prev: before.Hash})
			l := slices.Insert(slices.Clone(lines), 4, fake)
			return tampered{join(l), head, keys}
		}, []string{ProblemSequence, ProblemChain}, 6, true, 24},
		{"records swapped", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			l[4], l[5] = l[5], l[4]
			return tampered{join(l), head, keys}
		}, []string{ProblemSequence, ProblemChain}, 5, true, 24},
		{"tail cut", func(t *testing.T) tampered {
			return tampered{join(lines[:20]), head, keys}
		}, []string{ProblemTruncated}, 20, true, 12},
		{"file ends mid-line", func(t *testing.T) tampered {
			b := join(lines)
			return tampered{b[:len(b)-40], head, keys}
		}, []string{ProblemTruncated}, 24, true, 12},
		{"head hash disagrees", func(t *testing.T) tampered {
			return tampered{join(lines), Head{Seq: head.Seq, Hash: mustParse(t, lines[0]).Hash}, keys}
		}, []string{ProblemHead}, 24, true, 12},
		{"malformed line", func(t *testing.T) tampered {
			l := slices.Insert(slices.Clone(lines), 4, []byte("garbage"))
			return tampered{join(l), head, keys}
		}, []string{ProblemMalformed}, 5, true, 24},
		{"rewritten from seq 5, checkpoints forged", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			l[4] = editReason(t, l[4])
			l, h := rechain(t, l, 4, attacker)
			return tampered{join(l), h, keys}
		}, []string{ProblemSignature}, 12, true, 0},
		{"rewritten from seq 5, checkpoints by an unknown key", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			l[4] = editReason(t, l[4])
			l, h := rechain(t, l, 4, stranger)
			return tampered{join(l), h, keys}
		}, []string{ProblemUnknownKey}, 12, true, 0},
		{"rewritten from seq 5, signatures not checked", func(t *testing.T) tampered {
			l := slices.Clone(lines)
			l[4] = editReason(t, l[4])
			l, h := rechain(t, l, 4, attacker)
			return tampered{join(l), h, nil}
		}, nil, 0, false, 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.tamper(t)
			rep, err := Verify(bytes.NewReader(in.file), &in.head, in.keys)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, p := range rep.Problems {
				if !slices.Contains(kinds, p.Kind) {
					kinds = append(kinds, p.Kind)
				}
				if p.Text == "" || strings.Contains(p.Text, "@") {
					t.Errorf("problem text %q", p.Text)
				}
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Fatalf("kinds %v, want %v; problems %+v", kinds, tt.kinds, rep.Problems)
			}
			if len(tt.kinds) > 0 && rep.Problems[0].Line != tt.line {
				t.Errorf("first problem on line %d, want %d: %+v", rep.Problems[0].Line, tt.line, rep.Problems)
			}
			if rep.OK() != (len(tt.kinds) == 0) {
				t.Errorf("OK() = %v", rep.OK())
			}
			if rep.SignaturesChecked != tt.checked || rep.LastCheckpoint != tt.lastGood {
				t.Errorf("SignaturesChecked %v, LastCheckpoint %d; want %v, %d", rep.SignaturesChecked, rep.LastCheckpoint, tt.checked, tt.lastGood)
			}
			t.Logf("%+v", rep.Problems)
		})
	}
}

func TestVerifyTwoEditsBothReported(t *testing.T) {
	signer, keys := testKeys(t, "local:test")
	lines, head := trail(t, signer)
	l := slices.Clone(lines)
	l[4] = editReason(t, l[4])
	l[15] = editReason(t, l[15])
	rep, err := Verify(bytes.NewReader(join(l)), &head, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 2 || rep.Problems[0].Seq != 5 || rep.Problems[1].Seq != 16 {
		t.Fatalf("problems %+v", rep.Problems)
	}
}

func TestVerifyReport(t *testing.T) {
	signer, keys := testKeys(t, "local:test")
	lines, _ := trail(t, signer)
	rep, err := Verify(bytes.NewReader(join(lines[:22])), nil, keys) // without the head: a cut is not seen
	if err != nil {
		t.Fatal(err)
	}
	requireOK(t, rep)
	first := mustParse(t, lines[0])
	if rep.Records != 22 || rep.Checkpoints != 1 || rep.LastCheckpoint != 12 || rep.UnsignedTail != 10 ||
		rep.First != (Head{Seq: 1, Hash: first.Hash}) || rep.Last.Seq != 22 {
		t.Fatalf("report %+v", rep)
	}

	empty, err := Verify(strings.NewReader(""), &Head{}, keys)
	if err != nil || !empty.OK() || empty.Records != 0 {
		t.Fatalf("empty trail: %+v, %v", empty, err)
	}
}

func TestReadHead(t *testing.T) {
	path := testPath(t)
	l := mustOpen(t, Options{Path: path})
	mustAppend(t, l, resolved(1))
	want := l.Head()
	mustClose(t, l)
	b, err := os.ReadFile(HeadPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != headSize || !strings.HasPrefix(string(b), "0000000000000000000") {
		t.Fatalf("head file %q", b)
	}
	got, err := ReadHead(HeadPath(path))
	if err != nil || got.Seq != want.Seq+1 { // Close added Stopped
		t.Fatalf("ReadHead %+v, %v", got, err)
	}
	if err := os.WriteFile(HeadPath(path), []byte("12 abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadHead(HeadPath(path)); err == nil {
		t.Fatal("malformed head accepted")
	}
}
