package audit

import (
	"bytes"
	"fmt"
	"io"
)

// tail is what Open needs of an existing file: the last complete line and
// where it ends. The file may be gigabytes, so readTail reads backwards
// from the end and never more than two lines' worth.
type tail struct {
	last []byte // the last complete line without its '\n'; nil when there is none
	end  int64  // offset just past the last '\n': bytes from here on are a partial line
}

// tailChunk is how much readTail reads per step back.
const tailChunk = 64 << 10

func readTail(f io.ReaderAt, size int64) (tail, error) {
	nl, err := lastNewline(f, size)
	if err != nil {
		return tail{}, err
	}
	if nl < 0 {
		return tail{end: 0}, nil // no complete line: the whole file is partial
	}
	start, err := lastNewline(f, nl)
	if err != nil {
		return tail{}, err
	}
	line := make([]byte, nl-(start+1))
	if _, err := f.ReadAt(line, start+1); err != nil {
		return tail{}, fmt.Errorf("audit: read last record: %w", err)
	}
	return tail{last: line, end: nl + 1}, nil
}

// lastNewline returns the offset of the last '\n' before end, or -1 when
// there is none. A line is at most MaxLineSize, so it gives up (the file
// is not ours, or damaged) when it finds none within that distance.
func lastNewline(f io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, tailChunk)
	for pos := end; pos > 0; {
		if end-pos > MaxLineSize {
			return 0, fmt.Errorf("%w: no line end in the last %d bytes before offset %d", ErrTampered, MaxLineSize, end)
		}
		n := int64(min(tailChunk, pos))
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, fmt.Errorf("audit: read tail: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i), nil
		}
	}
	return -1, nil
}
