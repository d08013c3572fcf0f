package smtp

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzStrictData: StrictData never panics, accepts exactly the inputs whose
// every CR and LF are CRLF pairs (RFC 5321 2.3.8) and that hold no NUL, returns accepted input
// unchanged, and drains refused input to its end. mode picks how the input is
// split into reads.
func FuzzStrictData(f *testing.F) {
	for _, tc := range strictDataCases {
		if len(tc.in) < 1<<12 {
			f.Add([]byte(tc.in), uint8(0))
			f.Add([]byte(tc.in), uint8(1))
		}
	}
	f.Add([]byte("a\r"), uint8(2))
	f.Add([]byte("\r\n.\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		src := bytes.NewReader(in)
		var r io.Reader = src
		switch mode % 4 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		case 3:
			r = iotest.DataErrReader(r)
		}
		out, err := io.ReadAll(NewStrictData(r))

		// Reference: removing every CRLF pair leaves no CR or LF. The pairs
		// cannot overlap, so ReplaceAll finds them all. When both a bare
		// line ending and a NUL are there, the read that brings one first
		// decides the error.
		rest := bytes.ReplaceAll(in, []byte("\r\n"), nil)
		bare, nul := bytes.ContainsAny(rest, "\r\n"), bytes.IndexByte(in, 0) >= 0
		clean := !bare && !nul

		switch {
		case clean && err != nil:
			t.Fatalf("refused clean input %q: %v", in, err)
		case clean && !bytes.Equal(out, in):
			t.Fatalf("changed clean input %q to %q", in, out)
		case bare && !nul && err != ErrBareLineEnding:
			t.Fatalf("input %q: err = %v, want ErrBareLineEnding", in, err)
		case nul && !bare && err != ErrNULInData:
			t.Fatalf("input %q: err = %v, want ErrNULInData", in, err)
		case bare && nul && err != ErrBareLineEnding && err != ErrNULInData:
			t.Fatalf("input %q: err = %v, want ErrBareLineEnding or ErrNULInData", in, err)
		case !clean && src.Len() != 0:
			t.Fatalf("input %q: %d bytes not drained", in, src.Len())
		case !clean && !bytes.HasPrefix(in, out):
			t.Fatalf("input %q: returned %q, not a prefix", in, out)
		}
	})
}
