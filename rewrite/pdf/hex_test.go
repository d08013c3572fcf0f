package pdf

import (
	"bytes"
	"testing"
)

// TestAppendHex: ASCIIHex as PDF 32000-1 section 7.4.2 reads it.
func TestAppendHex(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"40", "@"},
		{"6A 61\n6e65", "jane"},
		{"4", "@"},
		{"41x42", "AB"},
		{"4142>4344", "AB"},
		{"414", "A@"},
		{"41 4", "A@"},
		{"4142 43>44", "ABC"},
		{"fEfF", "\xfe\xff"},
	} {
		if got := appendHex([]byte("pre"), []byte(tc.in)); string(got) != "pre"+tc.want {
			t.Errorf("appendHex(%q) = %q, want %q", tc.in, got[3:], tc.want)
		}
	}
}

// FuzzAppendHex: the pairwise fast path reads what a digit-by-digit
// reading does.
func FuzzAppendHex(f *testing.F) {
	for _, seed := range []string{"", "4", "414", "41 42", "4142>43", "zz41", "6A61 6e65\n40>", "FEFF00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []byte
		hi, odd := byte(0), false
		for _, c := range b {
			if c == '>' {
				break
			}
			v, ok := hexValue(c)
			if !ok {
				continue
			}
			if odd {
				want = append(want, hi<<4|v)
			} else {
				hi = v
			}
			odd = !odd
		}
		if odd {
			want = append(want, hi<<4)
		}
		if got := appendHex(nil, b); !bytes.Equal(got, want) {
			t.Fatalf("appendHex(%q) = %q, want %q", b, got, want)
		}
	})
}
