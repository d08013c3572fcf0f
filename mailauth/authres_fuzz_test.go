package mailauth

import (
	"bytes"
	"testing"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
)

// FuzzStripAuthResults checks StripAuthResults' invariants on any input:
// it only removes whole fields (what is kept is the input with some fields
// cut out, in order), a second pass removes nothing, and it never panics.
func FuzzStripAuthResults(f *testing.F) {
	for _, seed := range []string{
		"Authentication-Results: mx.company.example; spf=pass\r\nSubject: x\r\n\r\nbody\r\n",
		"Authentication-Results: (c (d) \\) e)\r\n mx.company.example; none\r\n",
		"Authentication-Results: \"mx.company.example\"; none\n",
		"Authentication-Results: (unterminated\r\n",
		"\r\nAuthentication-Results: mx.company.example; none\r\n",
		" continuation first\r\nAuthentication-Results:mx.company.example\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, n := StripAuthResults(in, ourID)
		if n == 0 && !bytes.Equal(out, in) {
			t.Fatalf("nothing removed but output differs:\n in %q\nout %q", in, out)
		}
		if !isSubsequenceOfFields(in, out) {
			t.Fatalf("output is not the input minus whole fields:\n in %q\nout %q", in, out)
		}
		if again, m := StripAuthResults(out, ourID); m != 0 || !bytes.Equal(again, out) {
			t.Fatalf("second pass removed %d fields from %q", m, out)
		}
	})
}

// isSubsequenceOfFields reports whether out is in with zero or more of its
// header fields removed.
func isSubsequenceOfFields(in, out []byte) bool {
	for {
		f, rest, ok := rawheader.Next(in)
		if !ok {
			return bytes.Equal(in, out)
		}
		if bytes.HasPrefix(out, f) {
			if _, outRest, _ := rawheader.Next(out); bytes.Equal(outRest, out[len(f):]) {
				out = out[len(f):]
			}
		}
		in = rest
	}
}
