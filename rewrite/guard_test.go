package rewrite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// writeInPieces writes msg in pieces of n bytes, as the walker writes lines.
func writeInPieces(w io.Writer, msg string, n int) error {
	for len(msg) > 0 {
		k := min(n, len(msg))
		if _, err := io.WriteString(w, msg[:k]); err != nil {
			return err
		}
		msg = msg[k:]
	}
	return nil
}

// TestWithGuardHeldAndStreamed: whatever a rewrite lets through, the guard
// sees, whether the output was held in memory (smaller than guardBufSize)
// or streamed, and wherever the address lies relative to the point where
// holding turns into streaming. A refused held output never reaches dst.
func TestWithGuardHeldAndStreamed(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	const hdr = "From: support@company.example\r\nContent-Type: text/plain\r\n\r\n"
	line := strings.Repeat("x", 70) + "\r\n"
	pad := func(n int) string { return strings.Repeat(line, n/len(line)) }
	leak := "write to jane@example.net\r\n"
	tests := []struct {
		name string
		msg  string
		leak bool
	}{
		{"small clean", hdr + "hi\r\n", false},
		{"small leak in header", "From: support@company.example\r\nTo: jane@example.net\r\n\r\nhi\r\n", true},
		{"small leak in body", hdr + leak, true},
		{"leak just before the hold limit", hdr + pad(guardBufSize-len(hdr)-len(leak)-200) + leak, true},
		{"leak across the hold limit", hdr + pad(guardBufSize-len(hdr)-10) + strings.Repeat("y", 10-len(line)%10) + leak, true},
		{"large leak after the hold limit", hdr + pad(3*guardBufSize) + leak, true},
		{"large leak at the start", hdr + leak + pad(3*guardBufSize), true},
		{"large clean", hdr + pad(3*guardBufSize) + "hi\r\n", false},
	}
	for _, tt := range tests {
		for _, piece := range []int{7, 73, 4096, 1 << 20} {
			var dst bytes.Buffer
			err := rw.withGuard(context.Background(), &dst, func(w io.Writer) error {
				return writeInPieces(w, tt.msg, piece)
			})
			switch {
			case tt.leak && !errors.Is(err, ErrLeak):
				t.Errorf("%s, pieces of %d: err = %v, want ErrLeak", tt.name, piece, err)
			case !tt.leak && err != nil:
				t.Errorf("%s, pieces of %d: err = %v", tt.name, piece, err)
			case !tt.leak && dst.String() != tt.msg:
				t.Errorf("%s, pieces of %d: dst holds %d bytes, want the %d written", tt.name, piece, dst.Len(), len(tt.msg))
			case tt.leak && len(tt.msg) < guardBufSize && dst.Len() > 0:
				t.Errorf("%s, pieces of %d: a refused held output reached dst (%d bytes)", tt.name, piece, dst.Len())
			}
		}
	}
}

// TestWithGuardRewriteError: the rewrite's own error wins over the
// guard's, and a held output is not written.
func TestWithGuardRewriteError(t *testing.T) {
	rw, _ := newTestRewriter(t, RewriteOptions{})
	for _, n := range []int{100, 3 * guardBufSize} {
		var dst bytes.Buffer
		err := rw.withGuard(context.Background(), &dst, func(w io.Writer) error {
			io.WriteString(w, "From: jane@example.net\r\n\r\n"+strings.Repeat("x", n))
			return ErrLimit
		})
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%d bytes: err = %v, want ErrLimit", n, err)
		}
		if n < guardBufSize && dst.Len() > 0 {
			t.Errorf("%d bytes: held output written despite the error", n)
		}
	}
}
