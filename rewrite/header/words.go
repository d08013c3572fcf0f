package header

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// This file decodes and encodes RFC 2047 encoded-words. It does its own
// parsing rather than use mime.WordDecoder because real mail needs more
// tolerance (words glued to text, missing base64 padding, a multi-byte
// character split across two words) and because the rewriter must know
// where each word sits to re-encode only the run that changed.

// hdrWord is one encoded-word, s[start:end] = "=?charset?enc?text?=".
type hdrWord struct {
	start, end int
	charset    string // as written, without an RFC 2231 "*language" suffix
	b          bool   // B encoding; else Q
	text       string // encoded-text
}

// hdrMaxCharset bounds the charset name so a stray "=?" costs little.
const hdrMaxCharset = 64

// hdrWordAt parses the encoded-word starting at s[i] (RFC 2047 section 2).
// encoded-text may not hold '?' or white space; anything else printable is
// taken, since Q-encoders often leave specials and even '@' raw.
func hdrWordAt(s string, i int) (hdrWord, bool) {
	if !strings.HasPrefix(s[i:], "=?") {
		return hdrWord{}, false
	}
	cs := i + 2
	j := cs
	for j < len(s) && s[j] != '?' && s[j] > ' ' && s[j] < 0x7f && j-cs <= hdrMaxCharset {
		j++
	}
	if j == cs || j+3 >= len(s) || s[j] != '?' || s[j+2] != '?' {
		return hdrWord{}, false
	}
	w := hdrWord{start: i, charset: s[cs:j]}
	switch s[j+1] {
	case 'b', 'B':
		w.b = true
	case 'q', 'Q':
	default:
		return hdrWord{}, false
	}
	ts := j + 3
	for j = ts; j < len(s) && s[j] != '?' && s[j] > ' ' && s[j] < 0x7f; j++ {
	}
	if j+1 >= len(s) || s[j] != '?' || s[j+1] != '=' {
		return hdrWord{}, false
	}
	if k := strings.IndexByte(w.charset, '*'); k >= 0 {
		w.charset = w.charset[:k] // RFC 2231 section 5
	}
	w.text, w.end = s[ts:j], j+2
	return w, true
}

// hdrWordRun is a run of encoded-words separated only by white space, which
// a reader ignores (RFC 2047 section 6.2): s[start:end].
type hdrWordRun struct{ start, end int }

// hdrWordRuns appends the runs of encoded-words in s, wherever they sit,
// to runs.
func hdrWordRuns(s string, runs []hdrWordRun) []hdrWordRun {
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], "=?")
		if k < 0 {
			break
		}
		w, ok := hdrWordAt(s, i+k)
		if !ok {
			i += k + 1
			continue
		}
		if n := len(runs); n > 0 && hdrSpaceEnd(s, runs[n-1].end) == w.start {
			runs[n-1].end = w.end
		} else {
			runs = append(runs, hdrWordRun{start: w.start, end: w.end})
		}
		i = w.end
	}
	return runs
}

// decode returns the run's text. Adjacent words of one charset are decoded
// together, which mends a character split across words (and keeps
// ISO-2022-JP's shift state). An undecodable word keeps its raw text, and
// ok is false; hidden reports that such a word's payload holds '@', an
// address no one can see.
func (r hdrWordRun) decode(s string) (text string, ok, hidden bool) {
	var outBuf, payBuf [128]byte
	out, ok := outBuf[:0], true
	for i := r.start; i < r.end; {
		first, _ := hdrWordAt(s, i)
		payload, good, last := payBuf[:0], true, first
		for i < r.end {
			w, _ := hdrWordAt(s, i)
			if !strings.EqualFold(w.charset, first.charset) {
				break
			}
			var g bool
			payload, g = w.appendPayload(payload)
			good, last, i = good && g, w, hdrSpaceEnd(s, w.end)
		}
		n := len(out)
		if good {
			out, good = hdrCharsetAppend(out, first.charset, payload)
		}
		if !good {
			out = append(out[:n], s[first.start:last.end]...)
			ok, hidden = false, hidden || bytes.IndexByte(payload, '@') >= 0
		}
	}
	return string(out), ok, hidden
}

// appendPayload undoes the Q or B encoding (RFC 2047 section 4). Q is
// decoded leniently (a '=' not followed by two hex digits stays), and so is
// B.
func (w hdrWord) appendPayload(dst []byte) ([]byte, bool) {
	if w.b {
		if p, err := base64.StdEncoding.AppendDecode(dst, []byte(w.text)); err == nil {
			return p, true
		}
		return hdrLooseBase64(dst, w.text)
	}
	for i := 0; i < len(w.text); i++ {
		c := w.text[i]
		switch {
		case c == '_':
			c = ' '
		case c == '=' && i+2 < len(w.text) && isHex(w.text[i+1]) && isHex(w.text[i+2]):
			c = unhex(w.text[i+1])<<4 | unhex(w.text[i+2])
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, true
}

// hdrLooseBase64 decodes what it can of broken base64 (bad padding, stray
// characters): what a lenient reader would show must be seen here too.
func hdrLooseBase64(dst []byte, text string) ([]byte, bool) {
	b := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		if c := text[i]; isHex(c) || c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '+' || c == '/' {
			b = append(b, c)
		}
	}
	if len(b)%4 == 1 {
		b = b[:len(b)-1] // six bits make no byte
	}
	p, err := base64.RawStdEncoding.AppendDecode(dst, b)
	return p, err == nil
}

// hdrCharsetAppend appends payload converted to UTF-8 with the charsets
// go-message/charset knows. A charset it does not know still decodes when
// the payload is plain ASCII, which every charset mail uses for addresses
// agrees on (think "unknown-8bit" or a misspelled label).
func hdrCharsetAppend(dst []byte, cs string, payload []byte) ([]byte, bool) {
	if strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "us-ascii") || strings.EqualFold(cs, "utf8") {
		return hdrAppendValid(dst, payload), true
	}
	if r, err := charset.Reader(cs, bytes.NewReader(payload)); err == nil {
		if out, err := io.ReadAll(r); err == nil {
			return hdrAppendValid(dst, out), true
		}
	}
	if isASCII(string(payload)) {
		return append(dst, payload...), true
	}
	return dst, false
}

// hdrAppendValid appends b with invalid UTF-8 replaced by U+FFFD.
func hdrAppendValid(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	return append(dst, bytes.ToValidUTF8(b, []byte("\uFFFD"))...)
}

// hdrDecodeText decodes the encoded-words in s, dropping the white space
// between adjacent ones; other text is kept. hidden reports an undecodable
// word whose payload holds '@'.
func hdrDecodeText(s string) (text string, hidden bool) {
	if !strings.Contains(s, "=?") {
		return s, false
	}
	var buf [4]hdrWordRun
	runs := hdrWordRuns(s, buf[:0])
	switch {
	case len(runs) == 0:
		return s, false
	case len(runs) == 1 && runs[0].start == 0 && runs[0].end == len(s):
		t, _, h := runs[0].decode(s) // the common case: the whole name is encoded
		return t, h
	}
	var b strings.Builder
	last := 0
	for _, r := range runs {
		t, _, h := r.decode(s)
		b.WriteString(s[last:r.start])
		b.WriteString(t)
		last, hidden = r.end, hidden || h
	}
	b.WriteString(s[last:])
	return b.String(), hidden
}

// RFC 2047 section 2: an encoded-word is at most 75 characters, so with
// "=?utf-8?q?" and "?=" at most 63 characters of encoded-text; B carries 3
// bytes in 4 characters, so 45 bytes per word.
const (
	hdrWordPrefixQ = "=?utf-8?q?"
	hdrWordPrefixB = "=?utf-8?b?"
	hdrMaxQText    = 75 - len(hdrWordPrefixQ) - 2
	hdrMaxBBytes   = (75 - len(hdrWordPrefixB) - 2) / 4 * 3
)

// hdrEncodeWords renders s as UTF-8 encoded-words, Q or B whichever is
// shorter (Q on a tie: it stays readable), separated by single spaces.
func hdrEncodeWords(s string) string {
	q := 0
	for i := 0; i < len(s); i++ {
		q += hdrQLen(s[i])
	}
	if b := (len(s) + 2) / 3 * 4; b < q {
		return hdrEncodeB(s)
	}
	return hdrEncodeQ(s)
}

// hdrQSafe reports the bytes Q may leave as they are in a phrase (RFC 2047
// section 5 rule 3): the strictest context, so the result is valid
// anywhere an encoded-word is.
func hdrQSafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/", c) >= 0
}

func hdrQLen(c byte) int {
	if hdrQSafe(c) || c == ' ' {
		return 1
	}
	return 3
}

func hdrEncodeQ(s string) string {
	var b strings.Builder
	n := 0 // encoded-text length of the current word
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		rl := 0
		for k := i; k < i+size; k++ {
			rl += hdrQLen(s[k])
		}
		if n == 0 || n+rl > hdrMaxQText { // a character never straddles two words (section 5)
			if n > 0 {
				b.WriteString("?= ")
			}
			b.WriteString(hdrWordPrefixQ)
			n = 0
		}
		for k := i; k < i+size; k++ {
			hdrWriteQ(&b, s[k])
		}
		n, i = n+rl, i+size
	}
	if n > 0 {
		b.WriteString("?=")
	}
	return b.String()
}

func hdrWriteQ(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	switch {
	case c == ' ':
		b.WriteByte('_')
	case hdrQSafe(c):
		b.WriteByte(c)
	default:
		b.Write([]byte{'=', hex[c>>4], hex[c&15]})
	}
}

func hdrEncodeB(s string) string {
	var b strings.Builder
	for start := 0; start < len(s); {
		end := start
		for end < len(s) {
			_, size := utf8.DecodeRuneInString(s[end:])
			if end+size-start > hdrMaxBBytes {
				break
			}
			end += size
		}
		if start > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(hdrWordPrefixB)
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s[start:end])))
		b.WriteString("?=")
		start = end
	}
	return b.String()
}
