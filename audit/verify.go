package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
)

// Problem kinds.
const (
	ProblemHash       = "hash"          // a record does not match its own hash: edited
	ProblemChain      = "chain"         // prev is not the hash of the record before: edited, inserted, deleted or moved
	ProblemSequence   = "sequence"      // seq is not one more than the record before
	ProblemSignature  = "signature"     // a checkpoint signature does not verify
	ProblemUnknownKey = "unknown_key"   // a checkpoint names a key ID or version not in Keys
	ProblemMalformed  = "malformed"     // a line is not a record
	ProblemTruncated  = "truncated"     // the file ends mid-line, or before the head file's record
	ProblemHead       = "head_mismatch" // the record at the head file's seq has another hash
)

// Problem is one finding. Line is 1-based; Seq is 0 when the line did not
// parse. Text says what was found, never what a record contains.
type Problem struct {
	Line int
	Seq  uint64
	Kind string
	Text string
}

// Report is the outcome of Verify.
type Report struct {
	Records, Checkpoints uint64
	First, Last          Head
	LastCheckpoint       uint64 // seq of the last valid checkpoint, 0 if none
	UnsignedTail         uint64 // records after the last valid checkpoint
	// SignaturesChecked is false when Verify had no Keys: checkpoints
	// were then counted, and LastCheckpoint set, without checking them.
	SignaturesChecked bool
	Problems          []Problem // empty means the trail verifies
	MoreProblems      int       // problems found beyond maxProblems, not listed
}

// OK says the trail verified: no problem found.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.MoreProblems == 0 }

// maxProblems bounds the list: a file of garbage must not make Verify
// build a report as large as the file.
const maxProblems = 1000

// Verify reads a whole trail and checks every record's hash, the seq and
// prev chain from seq 1, and (with keys) every checkpoint signature. With
// head (from ReadHead), it also checks the file reaches the head's record
// and that record has the head's hash; the file may extend beyond the
// head, which lags after a crash. The error is for I/O only: findings go
// into Report.Problems. After a chain or sequence problem, checking goes
// on from the next record, so one edit does not hide another.
func Verify(r io.Reader, head *Head, keys Keys) (Report, error) {
	v := &verifier{
		rep:      Report{SignaturesChecked: keys != nil},
		head:     head,
		keys:     keys,
		lastHash: zeroHash,
		chained:  true,
	}
	lr := newLineReader(r)
	for {
		line, complete, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			v.problem(lr.n, 0, ProblemMalformed, err.Error())
			v.chained = false
			continue
		}
		if err != nil {
			return v.rep, ioError{err}
		}
		if !complete {
			v.problem(lr.n, 0, ProblemTruncated, fmt.Sprintf(
				"the file ends in the middle of line %d (%d bytes, no newline): a crash mid-write, or a cut", lr.n, len(line)))
			break
		}
		v.line(lr.n, line)
	}
	v.finish()
	return v.rep, nil
}

type verifier struct {
	rep  Report
	head *Head
	keys Keys

	lastSeq  uint64
	lastHash string // the hash the last record states: what the next prev must be
	lastLine int
	chained  bool // lastSeq and lastHash are known (false after a malformed line)
	headSeen bool
}

func (v *verifier) problem(line int, seq uint64, kind, text string) {
	if len(v.rep.Problems) >= maxProblems {
		v.rep.MoreProblems++
		return
	}
	v.rep.Problems = append(v.rep.Problems, Problem{Line: line, Seq: seq, Kind: kind, Text: text})
}

func (v *verifier) line(n int, line []byte) {
	rec, computed, err := parseLine(line)
	if err != nil {
		v.problem(n, 0, ProblemMalformed, fmt.Sprintf("line %d is not a record: %v", n, err))
		v.chained = false
		return
	}
	problems := len(v.rep.Problems) + v.rep.MoreProblems
	v.rep.Records++
	if v.rep.Records == 1 {
		v.rep.First = Head{Seq: rec.Seq, Hash: rec.Hash}
	}
	if computed != rec.Hash {
		v.problem(n, rec.Seq, ProblemHash, fmt.Sprintf(
			"line %d (seq %d) does not match its hash: the record was changed after it was written", n, rec.Seq))
	}
	if v.chained {
		v.checkLink(n, &rec)
	}
	if v.head != nil && !v.headSeen && rec.Seq == v.head.Seq {
		v.headSeen = true
		if rec.Hash != v.head.Hash {
			v.problem(n, rec.Seq, ProblemHead, fmt.Sprintf(
				"line %d (seq %d) has another hash than the head file records for that seq", n, rec.Seq))
		}
	}
	v.rep.UnsignedTail++
	if rec.Event == Checkpoint {
		v.rep.Checkpoints++
		if v.checkSignature(n, &rec) && len(v.rep.Problems)+v.rep.MoreProblems == problems {
			v.rep.LastCheckpoint = rec.Seq
			v.rep.UnsignedTail = 0
		}
	}
	// Go on from this record whatever was wrong with it.
	v.lastSeq, v.lastHash, v.lastLine, v.chained = rec.Seq, rec.Hash, n, true
}

// checkLink checks rec follows the record before it.
func (v *verifier) checkLink(n int, rec *Record) {
	before := "the start of the file"
	if v.lastLine > 0 {
		before = fmt.Sprintf("seq %d on line %d", v.lastSeq, v.lastLine)
	}
	switch {
	case rec.Seq == v.lastSeq+1:
	case rec.Seq > v.lastSeq+1:
		v.problem(n, rec.Seq, ProblemSequence, fmt.Sprintf(
			"line %d has seq %d after %s: %d record(s) missing", n, rec.Seq, before, rec.Seq-v.lastSeq-1))
	default:
		v.problem(n, rec.Seq, ProblemSequence, fmt.Sprintf(
			"line %d has seq %d after %s: records inserted or out of order", n, rec.Seq, before))
	}
	if rec.Prev != v.lastHash {
		want := "the hash of " + before
		if v.lastLine == 0 {
			want = "the zero hash that starts the trail"
		}
		v.problem(n, rec.Seq, ProblemChain, fmt.Sprintf(
			"line %d (seq %d): prev is not %s: a record was inserted, removed or moved here", n, rec.Seq, want))
	}
}

// checkSignature checks a checkpoint; without keys every checkpoint passes.
func (v *verifier) checkSignature(n int, rec *Record) bool {
	if v.keys == nil {
		return true
	}
	versions, ok := v.keys[rec.Key]
	if !ok {
		v.problem(n, rec.Seq, ProblemUnknownKey, fmt.Sprintf(
			"line %d: checkpoint seq %d is signed by unknown key %q", n, rec.Seq, rec.Key))
		return false
	}
	version, sig, err := parseSig(rec.Sig)
	if err != nil {
		v.problem(n, rec.Seq, ProblemSignature, fmt.Sprintf("line %d: checkpoint seq %d: %v", n, rec.Seq, err))
		return false
	}
	pub, ok := versions[version]
	if !ok || len(pub) != ed25519.PublicKeySize {
		v.problem(n, rec.Seq, ProblemUnknownKey, fmt.Sprintf(
			"line %d: checkpoint seq %d is signed by version %d of key %q, which is not known", n, rec.Seq, version, rec.Key))
		return false
	}
	if !ed25519.Verify(pub, CheckpointMessage(rec.Seq, rec.Prev), sig) {
		v.problem(n, rec.Seq, ProblemSignature, fmt.Sprintf(
			"line %d: checkpoint seq %d: the signature does not verify with key %q version %d", n, rec.Seq, rec.Key, version))
		return false
	}
	return true
}

// finish checks the end of the file against the head.
func (v *verifier) finish() {
	v.rep.Last = Head{Seq: v.lastSeq, Hash: v.lastHash}
	if v.rep.Records == 0 {
		v.rep.Last = Head{}
	}
	if v.head == nil || v.head.Seq == 0 || v.headSeen {
		return
	}
	if v.lastSeq < v.head.Seq {
		v.problem(v.lastLine, v.lastSeq, ProblemTruncated, fmt.Sprintf(
			"the file ends at seq %d but the head file records seq %d: records were cut from the end", v.lastSeq, v.head.Seq))
		return
	}
	v.problem(0, v.head.Seq, ProblemHead, fmt.Sprintf("no record has the head file's seq %d", v.head.Seq))
}
