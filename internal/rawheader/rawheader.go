package rawheader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge: the header section did not end within the limit.
var ErrTooLarge = errors.New("header section exceeds the limit")

// Read reads the header section up to and including the empty line that
// ends it, or to the end of a message without a body. A line longer than
// br's buffer is read in pieces, and the line end of such a line is not
// mistaken for the empty line. More than max bytes is ErrTooLarge.
func Read(br *bufio.Reader, max int) ([]byte, error) {
	var hdr []byte
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if len(hdr) > max {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			lineStart = false // the rest of this line comes next
			continue
		case err == io.EOF:
			return hdr, nil
		case err != nil:
			return nil, err
		case lineStart && isBlank(line):
			return hdr, nil
		}
		lineStart = true
	}
}

func isBlank(line []byte) bool { return string(line) == "\r\n" || string(line) == "\n" }

// Next splits the first field, with its continuation lines (lines starting
// with a space or a tab, RFC 5322 §2.2.3), off hdr. ok is false at the end
// of the header section: no bytes left, or the empty line before the body.
func Next(hdr []byte) (field, rest []byte, ok bool) {
	if len(hdr) == 0 || bytes.HasPrefix(hdr, []byte("\r\n")) || hdr[0] == '\n' {
		return nil, hdr, false
	}
	end := 0
	for {
		i := bytes.IndexByte(hdr[end:], '\n')
		if i < 0 {
			return hdr, nil, true
		}
		end += i + 1
		if end == len(hdr) || (hdr[end] != ' ' && hdr[end] != '\t') {
			return hdr[:end], hdr[end:], true
		}
	}
}
