package smtp

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestDataReaderKeepsBytes: the data reader removes the stuffing dot of a
// line and the final "." line (RFC 5321 4.5.2, 4.1.1.4) and passes every
// other byte as sent, so the backend can refuse a bare CR or LF itself
// (tokenproxy patch 2). Before the patch, a "." and the CR after it at the
// start of a line were both dropped, and "\r\r\n.\r\n" did not end the data.
func TestDataReaderKeepsBytes(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"stuffed dot", "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n"},
		{"stuffed dot first", "..b\r\n.\r\n", ".b\r\n"},
		{"dot text", "a\r\n.b\r\n.\r\n", "a\r\nb\r\n"},
		{"empty", ".\r\n", ""},
		{"dot cr text", "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n"},
		{"dot cr first", ".\rb\r\n.\r\n", "\rb\r\n"},
		{"dot cr cr lf", "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n"},
		{"dot cr dot cr lf", "a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n"},
		{"cr cr lf then end", "a\r\r\n.\r\n", "a\r\r\n"},
		{"cr cr cr lf then end", "a\r\r\r\n.\r\n", "a\r\r\r\n"},
		{"dot lf", "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n"},
		{"bare lf dot lf", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n"},
		{"cr dot cr", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n"},
		{"nul", "a\x00b\r\n.\r\n", "a\x00b\r\n"},
	} {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"whole", func(r io.Reader) io.Reader { return r }},
			{"one byte", iotest.OneByteReader},
		} {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				const after = "NOOP\r\n"
				br := bufio.NewReader(strings.NewReader(tc.in + after))
				got, err := io.ReadAll(rd.wrap(&dataReader{r: br}))
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if string(got) != tc.want {
					t.Errorf("data %q, want %q", got, tc.want)
				}
				if rest, _ := io.ReadAll(br); string(rest) != after {
					t.Errorf("after the data: %q, want %q (the data must end at the final dot)", rest, after)
				}
			})
		}
	}
}

// TestDataReaderLimitWithSavedCR: the CR emitted for a ".\r" counts against
// MaxMessageBytes like any other byte.
func TestDataReaderLimitWithSavedCR(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(".\rbc\r\n.\r\n"))
	got, err := io.ReadAll(&dataReader{r: br, limited: true, n: 2})
	if err != ErrDataTooLarge || string(got) != "\rb" {
		t.Fatalf("got %q, %v; want %q, ErrDataTooLarge", got, err, "\rb")
	}
}
