package pdf

import (
	"bytes"
	"testing"
)

// FuzzStringsPlain: the fast reading of plain strings (appendStrings with
// a nil decoder: literals written straight into the output, ASCIIHex
// decoded in place) reads exactly what the general path reads with
// plainString, for any input.
func FuzzStringsPlain(f *testing.F) {
	for _, seed := range []string{
		"BT [(jane@exa) 3 (mple.com)] TJ ET",
		"<< /Author <FEFF006A0040> /Title (a\\)b\\100c.de) >>",
		"(\xfe\xff\x00j\x00@) Tj (x(y)z\\\n\\r\\101) <4 0 6a 6> Tj % (not) a string\n(end",
		"/F1 10 Tf (a) Tj /F2 9.5 Tf <6162> Tj << /K (v) >> (w)",
		"<>()<<>>\\(",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, _ := appendStrings(nil, nil, b, nil)
		general := pdfStrings(b, plainString)
		if !bytes.Equal(fast, general) {
			t.Fatalf("fast %q, general %q", fast, general)
		}
	})
}

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
