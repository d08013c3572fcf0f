package audit

import (
	"bytes"
	"fmt"
	"io"
)

// ScanBackward calls fn for each complete record of the trail in r (the
// first size bytes), last record first, until fn returns false. It reads
// from the end in chunks, so looking at the latest records of a trail of
// gigabytes costs what those records cost. As in Scan, a last line
// without '\n' is a write in progress and is skipped, and the hashes are
// not checked.
func ScanBackward(r io.ReaderAt, size int64, fn func(Record) (more bool, err error)) error {
	chunk := make([]byte, tailChunk)
	var carry []byte // the start of a line whose beginning is before pos
	last := true     // the next segment found is the one after the file's last '\n'
	for pos := size; pos > 0; {
		n := min(int64(tailChunk), pos)
		pos -= n
		if _, err := r.ReadAt(chunk[:n], pos); err != nil {
			return ioError{err}
		}
		data := append(chunk[:n:n], carry...)
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := data[i+1:]
			data = data[:i]
			if last {
				last = false // a partial line, or empty
				continue
			}
			if more, err := backLine(line, pos+int64(i)+1, fn); err != nil || !more {
				return err
			}
		}
		if len(data) > MaxLineSize {
			return fmt.Errorf("audit: offset %d: %w", pos, errLineTooLong)
		}
		carry = bytes.Clone(data)
	}
	if last || len(carry) == 0 {
		return nil
	}
	_, err := backLine(carry, 0, fn)
	return err
}

func backLine(line []byte, offset int64, fn func(Record) (bool, error)) (bool, error) {
	rec, _, err := parseLine(line)
	if err != nil {
		return false, fmt.Errorf("audit: record at offset %d: %w", offset, err)
	}
	return fn(rec)
}
