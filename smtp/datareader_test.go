package smtp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	gosmtp "github.com/emersion/go-smtp"
)

// strictDataCases are inputs as go-smtp hands them to Session.Data: for DATA
// the dot-stuffing dot and the final "." line are already removed, for BDAT
// they are the raw chunks. want is nil when every line ending is CRLF
// (RFC 5321 2.3.8) and no byte is NUL.
var strictDataCases = []struct {
	name string
	in   string
	want error // nil, ErrBareLineEnding or ErrNULInData
}{
	{"empty", "", nil},
	{"crlf", "Subject: a\r\n\r\nhello\r\n", nil},
	{"no final line ending", "Subject: a\r\n\r\nhello", nil},
	{"only crlf", "\r\n\r\n\r\n", nil},
	{"dot-stuffed line after unstuffing", "a\r\n.\r\nb\r\n", nil},
	{"dots in lines", "a\r\n..x\r\n.y\r\n", nil},
	{"8-bit and tab", "a\xffb\tc\x01\x7f\r\n", nil},
	{"nul", "a\x00b\r\n", ErrNULInData},
	{"nul first", "\x00\r\n", ErrNULInData},
	{"nul last", "a\r\nb\x00", ErrNULInData},
	{"nul after held cr", "a\r\x00\n", ErrBareLineEnding},
	{"nul at buffer start", strings.Repeat("x", strictBufSize) + "\x00x\r\n", ErrNULInData},
	{"nul in a long message", strings.Repeat("line\r\n", 3000) + "a\x00\r\n" + strings.Repeat("line\r\n", 3000), ErrNULInData},
	{"bare lf", "a\nb\r\n", ErrBareLineEnding},
	{"bare lf first", "\nb\r\n", ErrBareLineEnding},
	{"bare lf last", "a\r\nb\n", ErrBareLineEnding},
	{"bare cr", "a\rb\r\n", ErrBareLineEnding},
	{"bare cr first", "\rb\r\n", ErrBareLineEnding},
	{"bare cr last", "a\r\nb\r", ErrBareLineEnding},
	{"only cr", "\r", ErrBareLineEnding},
	{"only lf", "\n", ErrBareLineEnding},
	{"lf cr", "a\n\rb", ErrBareLineEnding},
	{"cr cr lf", "a\r\r\nb\r\n", ErrBareLineEnding},
	{"cr lf lf", "a\r\n\nb\r\n", ErrBareLineEnding},
	{"lf dot crlf", "a\n.\r\nMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"crlf dot lf", "a\r\n.\nMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"lf dot lf", "a\n.\nMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"cr dot cr", "a\r.\rMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"crlf dot cr", "a\r\n.\rMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"cr dot crlf", "a\r.\r\nMAIL FROM:<x@example.org>\r\n", ErrBareLineEnding},
	{"dot cr at end", "a\r\n.\r", ErrBareLineEnding},
	{"dot cr cr lf", "a\r\n.\r\r\n", ErrBareLineEnding},
	{"bare lf before final dot", "a\r\nb\n", ErrBareLineEnding},
	{"lf then crlf dot crlf", "a\n\r\n.\r\n", ErrBareLineEnding},
	{"long line crlf", strings.Repeat("x", 1<<20) + "\r\n", nil},
	{"long line bare lf", strings.Repeat("x", 1<<20) + "\n", ErrBareLineEnding},
	{"long line bare cr", strings.Repeat("x", 1<<20) + "\rx", ErrBareLineEnding},
	{"crlf across buffer boundary", strings.Repeat("x", strictBufSize-1) + "\r\nabc\r\n", nil},
	{"cr at buffer end, lf next", strings.Repeat("x", strictBufSize) + "\r\n", nil},
	{"cr at buffer end, bare", strings.Repeat("x", strictBufSize-1) + "\rx", ErrBareLineEnding},
	{"lf at buffer start, bare", strings.Repeat("x", strictBufSize) + "\nx", ErrBareLineEnding},
	{"many lines", strings.Repeat("line\r\n", 5000), nil},
	{"many lines one bare lf", strings.Repeat("line\r\n", 3000) + "bad\n" + strings.Repeat("line\r\n", 3000), ErrBareLineEnding},
}

// readers feed the same input in different read sizes, so line endings are
// split across reads.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data+err", iotest.DataErrReader},
}

func TestStrictData(t *testing.T) {
	for _, tc := range strictDataCases {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				src := bytes.NewReader([]byte(tc.in))
				out, err := readAllChecked(t, NewStrictData(rd.wrap(src)))
				if tc.want == nil {
					if err != nil {
						t.Fatalf("err = %v, want nil", err)
					}
					if string(out) != tc.in {
						t.Fatalf("output differs from input (%d vs %d bytes)", len(out), len(tc.in))
					}
					return
				}
				if err != tc.want {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if src.Len() != 0 {
					t.Fatalf("%d bytes left unread: the data must be drained before the reply", src.Len())
				}
			})
		}
	}
}

// readAllChecked reads r to the end with small buffers and checks each
// returned byte: no bare LF, no bare CR, and when Read fails, no trailing CR
// (a CR whose LF StrictData had not seen).
func readAllChecked(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			prevCR := len(out) > 0 && out[len(out)-1] == '\r'
			if (c == '\n') != prevCR {
				t.Fatalf("returned a bare line ending: output ends %q", tail(append(out, c)))
			}
			out = append(out, c)
		}
		if err != nil && len(out) > 0 && out[len(out)-1] == '\r' {
			t.Fatalf("returned a CR before its LF was seen, then %v", err)
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func tail(b []byte) []byte {
	if len(b) > 16 {
		return b[len(b)-16:]
	}
	return b
}

// TestStrictDataSticky: after the error, Read keeps failing and returns no
// more bytes, so a caller that retries cannot forward the rest.
func TestStrictDataSticky(t *testing.T) {
	s := NewStrictData(strings.NewReader("a\nb\r\nc\r\n"))
	for i := 0; i < 3; i++ {
		n, err := s.Read(make([]byte, 64))
		if n != 0 || err != ErrBareLineEnding {
			t.Fatalf("Read #%d = %d, %v; want 0, ErrBareLineEnding", i, n, err)
		}
	}
}

// chunkReader returns its chunks one per Read, then err.
type chunkReader struct {
	chunks []string
	err    error
	reads  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if c.chunks[0] == "" {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestStrictDataHoldsCR: a CR at the end of a read is held back until the
// next byte is known, so a bare CR is never passed downstream.
func TestStrictDataHoldsCR(t *testing.T) {
	s := NewStrictData(&chunkReader{chunks: []string{"ab\r", "x"}, err: io.EOF})
	buf := make([]byte, 64)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "ab" {
		t.Fatalf("first Read = %q, %v; want \"ab\", nil", buf[:n], err)
	}
	if n, err := s.Read(buf); n != 0 || err != ErrBareLineEnding {
		t.Fatalf("second Read = %q, %v; want ErrBareLineEnding", buf[:n], err)
	}
}

// TestStrictDataPassesErrors: errors of the wrapped reader (go-smtp's size
// limit, RSET during BDAT, a broken connection) are passed on, also while
// draining after a bare line ending; the drain stops at them.
func TestStrictDataPassesErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		err    error
	}{
		{"too large, clean", []string{"a\r\n", "b\r\n"}, gosmtp.ErrDataTooLarge},
		{"reset, clean", []string{"a\r\n"}, gosmtp.ErrDataReset},
		{"reset while draining", []string{"a\n", "b\r\n"}, gosmtp.ErrDataReset},
		{"unexpected EOF while draining", []string{"a\r", "b\r\n"}, io.ErrUnexpectedEOF},
		{"unexpected EOF after held CR", []string{"a\r"}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &chunkReader{chunks: tc.chunks, err: tc.err}
			_, err := io.ReadAll(NewStrictData(src))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(src.chunks) != 0 {
				t.Fatalf("not drained: %q left", src.chunks)
			}
		})
	}
}

func TestCheckLineEndings(t *testing.T) {
	for _, tc := range []struct {
		in        string
		ok        int
		held, bad bool
	}{
		{"", 0, false, false},
		{"ab", 2, false, false},
		{"a\r\n", 3, false, false},
		{"a\r", 1, true, false},
		{"\r", 0, true, false},
		{"\r\n\r", 2, true, false},
		{"a\n", 0, false, true},
		{"\n", 0, false, true},
		{"a\rb", 0, false, true},
		{"\r\r", 0, false, true},
	} {
		ok, held, bad := checkLineEndings([]byte(tc.in))
		if ok != tc.ok || held != tc.held || bad != tc.bad {
			t.Errorf("checkLineEndings(%q) = %d, %v, %v; want %d, %v, %v",
				tc.in, ok, held, bad, tc.ok, tc.held, tc.bad)
		}
	}
}

func TestErrBareLineEnding(t *testing.T) {
	for _, e := range []*gosmtp.SMTPError{ErrBareLineEnding, ErrNULInData, ErrLineTooLong} {
		if e.Code != 500 || e.EnhancedCode != (gosmtp.EnhancedCode{5, 5, 2}) {
			t.Fatalf("%q: reply = %d %v, want 500 5.5.2", e.Message, e.Code, e.EnhancedCode)
		}
	}
}
