package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// errLineTooLong: a line over MaxLineSize; the reader skipped it.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", MaxLineSize)

// lineReader reads '\n'-terminated lines of at most MaxLineSize bytes.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	n   int // lines returned so far: the line number of the last one
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its '\n'. complete is false for a
// last line the input ends without '\n' (a write in progress, or a crash).
// The line is valid until the next call. At the end it returns io.EOF; a
// too long line is skipped and reported as errLineTooLong.
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if !tooLong {
			lr.buf = append(lr.buf, chunk...)
			if len(lr.buf) > MaxLineSize {
				tooLong, lr.buf = true, lr.buf[:0]
			}
		}
		switch {
		case err == nil:
			lr.n++
			if tooLong {
				return nil, true, errLineTooLong
			}
			return lr.buf[:len(lr.buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(lr.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			lr.n++
			if tooLong {
				return nil, false, errLineTooLong
			}
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// ioError marks an error from the reader itself, as opposed to its content.
type ioError struct{ err error }

func (e ioError) Error() string { return "audit: read: " + e.err.Error() }
func (e ioError) Unwrap() error { return e.err }

// Scan calls fn for each record of a trail, in file order, with the line
// it was read from (without '\n', valid only during the call). It checks
// the JSON, not the hashes: that is Verify's job. A malformed line is an
// error naming its line number. A last line without '\n' is a write in
// progress (or a crash remnant Open will drop) and is skipped. An error
// from fn stops the scan and is returned as is.
func Scan(r io.Reader, fn func(rec Record, line []byte) error) error {
	lr := newLineReader(r)
	for {
		line, complete, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errLineTooLong):
			return fmt.Errorf("audit: line %d: %w", lr.n, err)
		case err != nil:
			return ioError{err}
		case !complete:
			return nil
		}
		rec, _, err := parseLine(line)
		if err != nil {
			return fmt.Errorf("audit: line %d: %w", lr.n, err)
		}
		if err := fn(rec, line); err != nil {
			return err
		}
	}
}

// Query selects records for the compliance API. Zero fields match all.
type Query struct {
	Since, Until time.Time // Since <= Time < Until
	FromSeq      uint64    // Seq >= FromSeq
	Events       []string  // Event is one of these
	Token        string    // one of Tokens, compared case-insensitively
	Actor        string    // Actor is this, exactly
	Limit        int       // at most this many records
}

// Match reports whether rec is selected by q, Limit aside: for callers
// that select from several trails at once.
func (q Query) Match(rec *Record) bool { return q.match(rec) }

func (q Query) match(rec *Record) bool {
	switch {
	case rec.Seq < q.FromSeq,
		!q.Since.IsZero() && rec.Time.Before(q.Since),
		!q.Until.IsZero() && !rec.Time.Before(q.Until),
		len(q.Events) > 0 && !slices.Contains(q.Events, rec.Event),
		q.Actor != "" && rec.Actor != q.Actor:
		return false
	}
	if q.Token == "" {
		return true
	}
	return slices.ContainsFunc(rec.Tokens, func(t string) bool { return strings.EqualFold(t, q.Token) })
}

// errLimit ends a Select that has its Limit.
var errLimit = errors.New("limit reached")

// Select calls fn for each record matching q, in file order. It reads the
// whole file: records are in seq order, but clocks can step back, so a
// time bound does not end the scan early.
func Select(r io.Reader, q Query, fn func(Record) error) error {
	return SelectLines(r, q, func(rec Record, _ []byte) error { return fn(rec) })
}

// SelectLines is Select that also passes each record's line as written
// (without its newline), for exports that a verifier can still check.
func SelectLines(r io.Reader, q Query, fn func(rec Record, line []byte) error) error {
	n := 0
	err := Scan(r, func(rec Record, line []byte) error {
		if !q.match(&rec) {
			return nil
		}
		if err := fn(rec, line); err != nil {
			return err
		}
		n++
		if q.Limit > 0 && n >= q.Limit {
			return errLimit
		}
		return nil
	})
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
