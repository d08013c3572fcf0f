package rewrite

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// The encoders and decoders that avoid copies (issue 17, item 7) must
// write what the straightforward versions they replaced wrote: those are
// kept here as the reference.

func refWrapBase64(content []byte, eol string) []byte {
	enc := base64.StdEncoding.EncodeToString(content)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString(eol)
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString(eol)
	return b.Bytes()
}

func refDecodeBase64Lenient(raw []byte) []byte {
	clean := make([]byte, 0, len(raw))
	for _, c := range raw {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

func TestCopyFreeCodecsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 56, 57, 58, 114, 3071, 3072, 3073, 4095, 4096, 4097, 12289, 100000}
	for _, n := range sizes {
		content := make([]byte, n)
		for i := range content {
			content[i] = byte(rng.IntN(256))
		}
		for _, eol := range []string{"\r\n", "\n"} {
			got, want := wrapBase64(content, eol), refWrapBase64(content, eol)
			if !bytes.Equal(got, want) {
				t.Fatalf("wrapBase64(%d bytes, %q) differs from the reference", n, eol)
			}
			// Decoding: the wrapped text, and the same with stray
			// characters, padding in the middle and a dangling character.
			for _, raw := range [][]byte{want, append(bytes.ReplaceAll(want, []byte("A"), []byte("A=!")), 'Q')} {
				if !bytes.Equal(decodeBase64Lenient(bytes.Clone(raw)), refDecodeBase64Lenient(raw)) {
					t.Fatalf("decodeBase64Lenient(%d bytes) differs from the reference", len(raw))
				}
			}
		}
	}
	for _, s := range []string{"", "a\r\nb", "\r\r\n", "\r", "\n\r\n\r", "x\r\n\r\ny\r"} {
		if got, want := crlfToLF([]byte(s)), bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("crlfToLF(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestASCIIBytes(t *testing.T) {
	for _, s := range []string{"", "a", "abcdefg", "abcdefgh", "abcdefghi", "abcdefgh\x80", "\xffabcdefgh", "abc\xc3\xa9defghijklmnop", strings.Repeat("x", 100)} {
		if got, want := asciiBytes([]byte(s)), isASCII(s); got != want {
			t.Errorf("asciiBytes(%q) = %v, want %v", s, got, want)
		}
	}
}
