package rawheader

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRead: the header section and nothing more is read, in any buffer
// size; a long line's CRLF is not the empty line.
func TestRead(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 100) + "\r\n"
	tests := []struct {
		name, in, hdr string
		max           int
		err           bool
	}{
		{"header and body", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n\r\n", 1000, false},
		{"no body", "A: 1\r\n", "A: 1\r\n", 1000, false},
		{"empty header", "\r\nbody\r\n", "\r\n", 1000, false},
		// A line longer than the reader's buffer ends in CRLF: not the
		// empty line.
		{"long line", long + "B: 2\r\n\r\nbody", long + "B: 2\r\n\r\n", 1000, false},
		{"LF only", "A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n\n", 1000, false},
		// The 16-byte buffer splits this line so that its CRLF comes alone.
		{"CRLF alone after a split", "X: 0123456789abc\r\nB: 2\r\n\r\n", "X: 0123456789abc\r\nB: 2\r\n\r\n", 1000, false},
		{"too large", "A: 1\r\nB: 2\r\n\r\n", "", 8, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			hdr, err := Read(br, tt.max)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrTooLarge)) || string(hdr) != tt.hdr {
				t.Fatalf("got %q, %v; want %q", hdr, err, tt.hdr)
			}
			if err == nil {
				rest, _ := io.ReadAll(br)
				if string(hdr)+string(rest) != tt.in {
					t.Fatalf("header and rest %q + %q != input", hdr, rest)
				}
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name, in, field, rest string
		ok                    bool
	}{
		{"one line", "A: 1\r\nB: 2\r\n", "A: 1\r\n", "B: 2\r\n", true},
		{"folded", "A: 1\r\n 2\r\n\t3\r\nB: 2\r\n", "A: 1\r\n 2\r\n\t3\r\n", "B: 2\r\n", true},
		{"last without line end", "A: 1", "A: 1", "", true},
		{"empty line", "\r\nbody", "", "\r\nbody", false},
		{"LF empty line", "\nbody", "", "\nbody", false},
		{"nothing", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, rest, ok := Next([]byte(tt.in))
			if string(f) != tt.field || string(rest) != tt.rest || ok != tt.ok {
				t.Fatalf("Next(%q) = %q, %q, %v", tt.in, f, rest, ok)
			}
		})
	}
}
