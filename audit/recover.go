package audit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// recover reads the end of the file, checks it against its own hash and
// the head file, and cuts a partial last line. It returns the records to
// write before Started. It modifies the file only after every check
// passed, so a tampered file is left as found for the operator.
func (l *Log) recover(f *os.File) ([]Record, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: stat: %w", err)
	}
	t, err := readTail(l.f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", l.path, err)
	}
	last := Head{Hash: zeroHash}
	lastIsCheckpoint := false
	if t.last != nil {
		rec, computed, err := parseLine(t.last)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: last record: %v (run verify)", ErrTampered, l.path, err)
		}
		if computed != rec.Hash {
			return nil, fmt.Errorf("%w: %s: last record (seq %d) does not match its hash (run verify)", ErrTampered, l.path, rec.Seq)
		}
		last = Head{Seq: rec.Seq, Hash: rec.Hash}
		lastIsCheckpoint = rec.Event == Checkpoint
	}
	if err := l.checkHeadFile(last, st.Size()); err != nil {
		return nil, err
	}

	var first []Record
	if dropped := st.Size() - t.end; dropped > 0 {
		// A crash mid-write left a partial line. It was never
		// acknowledged, so dropping it loses nothing a caller relied on.
		if err := l.f.Truncate(t.end); err != nil {
			return nil, fmt.Errorf("audit: %s: cut partial line: %w", l.path, err)
		}
		l.logger.Warn("audit log ended with a partial line; dropped it", "path", l.path, "dropped_bytes", dropped, "seq", last.Seq)
		first = append(first, Record{Event: Recovered, Actor: "system",
			Detail: map[string]string{"dropped_bytes": strconv.FormatInt(dropped, 10)}})
	}
	l.size = t.end
	l.last = last
	if !lastIsCheckpoint {
		// Unknown how many records the last run left unsigned; at least
		// one, so the interval trigger signs them.
		l.unsigned = 1
	}
	l.nextCheckpoint = last.Seq + l.every
	return first, nil
}

// checkHeadFile refuses a file that ends before the record the head file
// names: its tail was cut. Accepting it would overwrite the head and
// erase the evidence. A head that lags the file is normal after a crash.
func (l *Log) checkHeadFile(last Head, size int64) error {
	head, err := ReadHead(HeadPath(l.path))
	if errors.Is(err, os.ErrNotExist) {
		if size > 0 {
			l.logger.Warn("audit head file missing; recreating it", "path", HeadPath(l.path), "seq", last.Seq)
		}
		return nil
	}
	if err != nil {
		l.logger.Warn("audit head file unreadable; rewriting it", "path", HeadPath(l.path), "err", err)
		return nil
	}
	switch {
	case head.Seq > last.Seq:
		return fmt.Errorf("%w: %s ends at seq %d but its head file records seq %d: the tail was cut (run verify)",
			ErrTampered, l.path, last.Seq, head.Seq)
	case head.Seq == last.Seq && head.Hash != last.Hash:
		return fmt.Errorf("%w: %s: last record (seq %d) does not match its head file (run verify)",
			ErrTampered, l.path, last.Seq)
	}
	return nil
}
