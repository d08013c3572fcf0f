package rewrite

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/transform"
)

func TestUTF7(t *testing.T) {
	tests := []struct{ utf7, text string }{
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"}, // RFC 2152's examples
		{"+ZeVnLIqe-", "日本語"},
		{"A+ImIDkQ.", "A≢Α."},
		{"jane+AEA-example.com", "jane@example.com"}, // glibc iconv encodes '@'
		{"1 +- 1", "1 + 1"},
		{"+2D3eAA-", "😀"},        // a surrogate pair
		{"+AOk", "é"},            // a run ended by the end of the text
		{"a+AOk b", "aé b"},      // a run ended by a character outside base64
		{"+2D0-x", "\uFFFDx"},    // a lone high surrogate
		{"caf\xe9", "caf\uFFFD"}, // 8-bit bytes are not UTF-7
		{"+AAA-", "\x00"},
	}
	for _, tt := range tests {
		got, _, err := transform.String(utf7Encoding{}.NewDecoder(), tt.utf7)
		if err != nil || got != tt.text {
			t.Errorf("decode %q = %q, %v; want %q", tt.utf7, got, err, tt.text)
		}
	}
	for _, s := range []string{"Hi Mom -☺-!", "日本語", "a+b~c\\d", "jane@example.com", "x😀y", "é-", "éA"} {
		enc, _, err := transform.String(utf7Encoding{}.NewEncoder(), s)
		if err != nil {
			t.Fatal(err)
		}
		back := iconv(t, "UTF-7", "UTF-8", []byte(enc)) // glibc reads what we write
		if string(back) != s {
			t.Errorf("encode %q = %q, which iconv reads as %q", s, enc, back)
		}
	}
}

// FuzzUTF7 checks the hand-written UTF-7 codec: decoding never fails and
// gives valid UTF-8; whatever it gives encodes to 7-bit text that decodes
// back to it; and both directions give the same result fed one byte at a
// time as fed whole (the transformers keep their state across calls).
func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"Hi Mom -+Jjo--!", "+ZeVnLIqe-", "jane+AEA-example.com", "+2D3eAA-", "+", "+-", "+AOk", "a+2D0-", "\xff+A"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		text := utf7Transform(t, utf7Encoding{}.NewDecoder(), in)
		if !utf8.Valid(text) {
			t.Fatalf("decoded %q to invalid UTF-8 %q", in, text)
		}
		enc := utf7Transform(t, utf7Encoding{}.NewEncoder(), text)
		for _, c := range enc {
			if c >= 0x80 || c == 0 {
				t.Fatalf("encoded %q to %q: not 7-bit text", text, enc)
			}
		}
		if back := utf7Transform(t, utf7Encoding{}.NewDecoder(), enc); !bytes.Equal(back, text) {
			t.Fatalf("%q encoded to %q decodes to %q", text, enc, back)
		}
	})
}

// utf7Transform runs tr over in whole, and one byte at a time, and checks
// that both agree.
func utf7Transform(t *testing.T, tr transform.Transformer, in []byte) []byte {
	t.Helper()
	whole, _, err := transform.Bytes(tr, in)
	if err != nil {
		t.Fatalf("transform %q: %v", in, err)
	}
	tr.Reset()
	bytewise, err := io.ReadAll(transform.NewReader(iotest.OneByteReader(bytes.NewReader(in)), tr))
	if err != nil || !bytes.Equal(whole, bytewise) {
		t.Fatalf("%q: whole %q, byte by byte %q (%v)", in, whole, bytewise, err)
	}
	return whole
}
