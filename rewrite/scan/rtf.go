package scan

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanRTF scans RTF (Microsoft's Rich Text Format 1.9.1) in the view of
// its text: control words, group braces and the line breaks of the file
// take no room ("jane{\b @}example.com" and a line broken by the writer
// read as one address); escapes are decoded: \'40 (a byte of the
// document's code page, read as Windows-1252), \u64? (a UTF-16 unit,
// with the \ucN characters that follow it for older readers), and \{ \}
// \\. Paragraph, line, cell and tab marks are line ends in the view, so
// an address never runs across them. Every destination is scanned, field
// instructions (HYPERLINK "mailto:…") and document properties included;
// \bin data is skipped.
func (s *scanner) scanRTF() {
	src, v := s.src, &s.v
	v.reset()
	r := scRTF{s: s, group: scRTFGroup{uc: 1}}
	for i := 0; i < len(src); {
		switch src[i] {
		case '{':
			r.stack = append(r.stack, r.group)
			i++
		case '}':
			if n := len(r.stack); n > 0 {
				r.group, r.stack = r.stack[n-1], r.stack[:n-1]
			}
			i++
		case '\r', '\n':
			i++ // not text: writers break lines anywhere
		case '\\':
			i = r.control(i)
		default:
			j := i + 1
			for j < len(src) && !scRTFSpecial(src[j]) {
				j++
			}
			v.copyOf(src, i, j)
			i = j
		}
	}
	if v.pieces == nil {
		v.pieces = []scPiece{}
	}
	s.matchView(v, false)
}

func scRTFSpecial(c byte) bool { return c == '{' || c == '}' || c == '\\' || c == '\r' || c == '\n' }

// scRTF is one RTF scan's state: what is in force in the current group,
// the groups around it, and what the document says of its code pages.
type scRTF struct {
	s        *scanner
	group    scRTFGroup
	stack    []scRTFGroup
	ansiCP   int         // \ansicpg: the document's code page
	fontCP   map[int]int // \fN's code page, from its \fcharset
	lastFont int
}

// scRTFGroup is what a group's braces scope: the \uc count, and the code
// page of the font in force, which tells whether a \'hh byte leads a
// double-byte character.
type scRTFGroup struct {
	uc int
	cp int
}

// scRTFMarks are the control words that end a line of text.
var scRTFMarks = map[string]rune{"par": '\n', "line": '\n', "sect": '\n', "page": '\n', "row": '\n',
	"cell": '\n', "nestcell": '\n', "tab": '\t', "emspace": ' ', "enspace": ' ', "qmspace": ' '}

// control adds the control word or symbol at src[i] (a backslash) to the
// view and returns the offset after it.
func (r *scRTF) control(i int) int {
	src, v := r.s.src, &r.s.v
	if i+1 >= len(src) {
		return len(src)
	}
	c := src[i+1]
	switch {
	case c == '\'':
		if b, ok := scRTFHex(src, i+2); ok {
			if e := r.trail(i+4, b); e > 0 {
				// One character of a double-byte code page: its trail
				// byte may be a letter or '@' and must not join an
				// address next to it.
				v.decoded(i, e, utf8.RuneError)
				return e
			}
			v.decoded(i, i+4, scCP1252(b))
			return i + 4
		}
		return i + 2
	case c == '{' || c == '}' || c == '\\':
		v.decoded(i, i+2, rune(c))
		return i + 2
	case c == '~':
		v.decoded(i, i+2, '\u00a0')
		return i + 2
	case c == '_':
		v.decoded(i, i+2, '\u2011')
		return i + 2
	case c == '\r' || c == '\n':
		v.decoded(i, i+2, '\n')
		return i + 2
	case !scIs(rune(c), scAlpha):
		return i + 2 // \* \- \| \: and the like: no text
	}
	word, param, hasParam, e := scRTFWord(src, i+1)
	switch {
	case word == "bin" && hasParam && param > 0:
		return min(len(src), e+param)
	case word == "uc" && hasParam && param >= 0:
		r.group.uc = param
	case word == "ansicpg" && hasParam:
		r.ansiCP, r.group.cp = param, param
	case word == "f" && hasParam:
		r.lastFont = param
		r.group.cp = r.ansiCP
		if cp, ok := r.fontCP[param]; ok {
			r.group.cp = cp
		}
	case word == "fcharset" && hasParam:
		if r.fontCP == nil {
			r.fontCP = map[int]int{}
		}
		r.fontCP[r.lastFont] = scRTFCharsetCP(param, r.ansiCP)
	case word == "u" && hasParam:
		u := rune(param)
		if u < 0 {
			u += 0x10000
		}
		if utf16.IsSurrogate(u) {
			u = utf8.RuneError // a character the address scanner never takes
		}
		e = r.skipFallback(e)
		v.decoded(i, e, u)
	default:
		if m, ok := scRTFMarks[word]; ok {
			v.decoded(i, e, m)
		}
	}
	return e
}

// scRTFWord reads the control word at src[j:]: letters, an optional
// signed number, and the space that may end it.
func scRTFWord(src []byte, j int) (word string, param int, hasParam bool, e int) {
	k := j
	for k < len(src) && k-j < 32 && scIs(rune(src[k]), scAlpha) {
		k++
	}
	word, e = string(src[j:k]), k
	n := k
	if n < len(src) && src[n] == '-' {
		n++
	}
	d := n
	for d < len(src) && d-n < 10 && '0' <= src[d] && src[d] <= '9' {
		d++
	}
	if d > n {
		param, _ = strconv.Atoi(string(src[k:d]))
		hasParam, e = true, d
	}
	if e < len(src) && src[e] == ' ' {
		e++
	}
	return word, param, hasParam, e
}

// skipFallback skips the characters a reader that knows \u ignores after
// it (\ucN, default 1): each a plain character or a \'hh escape.
func (r *scRTF) skipFallback(e int) int {
	src := r.s.src
	for n := 0; n < r.group.uc && e < len(src); n++ {
		switch {
		case src[e] == '\\' && e+1 < len(src) && src[e+1] == '\'':
			e = min(len(src), e+4)
		case scRTFSpecial(src[e]):
			return e
		default:
			e++
		}
	}
	return e
}

// trail returns the offset after the trail byte at src[j:] (a \'hh
// escape or a plain character) when lead leads a double-byte character in
// the code page in force, and 0 otherwise.
func (r *scRTF) trail(j int, lead byte) int {
	src := r.s.src
	if !scDBCSLead(r.group.cp, lead) || j >= len(src) {
		return 0
	}
	if src[j] == '\\' && j+1 < len(src) && src[j+1] == '\'' {
		if _, ok := scRTFHex(src, j+2); ok {
			return j + 4
		}
		return 0
	}
	if scRTFSpecial(src[j]) {
		return 0
	}
	return j + 1
}

// scRTFCharsetCP maps a font's \fcharset to its code page where that has
// double-byte characters (RTF 1.9.1, \fcharset table); any other charset
// reads as the document's code page would.
func scRTFCharsetCP(charset, ansiCP int) int {
	switch charset {
	case 128:
		return 932 // Shift JIS
	case 129:
		return 949 // Hangul
	case 130:
		return 1361 // Johab
	case 134:
		return 936 // GB2312
	case 136:
		return 950 // Big5
	case 0:
		return 1252
	}
	return ansiCP
}

// scDBCSLead reports whether b leads a two-byte character in code page cp.
func scDBCSLead(cp int, b byte) bool {
	switch cp {
	case 932:
		return 0x81 <= b && b <= 0x9f || 0xe0 <= b && b <= 0xfc
	case 936, 949, 950:
		return 0x81 <= b && b <= 0xfe
	case 1361:
		return 0x84 <= b && b <= 0xd3 || 0xd8 <= b && b <= 0xde || 0xe0 <= b && b <= 0xf9
	}
	return false
}

func scRTFHex(src []byte, j int) (byte, bool) {
	if j+2 > len(src) || !scIs(rune(src[j]), scHex) || !scIs(rune(src[j+1]), scHex) {
		return 0, false
	}
	return unhex(src[j])<<4 | unhex(src[j+1]), true
}

// scCP1252 reads a byte of the document's code page as Windows-1252 (the
// \ansicpg of most RTF): what matters is that ASCII reads as ASCII and
// Latin letters as letters.
func scCP1252(b byte) rune {
	if b < 0x80 || b >= 0xa0 {
		return rune(b)
	}
	return utf8.RuneError
}

// scRTFEncode appends replacement r in RTF: \ { } escaped, non-ASCII as
// \u escapes in a group of their own with \uc1 (so the '?' after each is
// its one fallback character whatever \uc the document set), and a space
// first where r would otherwise run into the control word before it.
func scRTFEncode(out []byte, r string, before []byte) []byte {
	if r != "" && scRTFWordEnds(before) {
		out = append(out, ' ')
	}
	for _, c := range r {
		switch {
		case c == '\\' || c == '{' || c == '}':
			out = append(out, '\\', byte(c))
		case c < 0x80:
			out = append(out, byte(c))
		default:
			out = append(out, `{\uc1`...)
			units := []rune{c}
			if c >= 0x10000 {
				h, l := utf16.EncodeRune(c)
				units = []rune{h, l}
			}
			for _, u := range units {
				if u >= 0x8000 {
					u -= 0x10000
				}
				out = append(strconv.AppendInt(append(out, `\u`...), int64(u), 10), '?')
			}
			out = append(out, '}')
		}
	}
	return out
}

// scRTFWordEnds reports whether before ends in a control word with no
// space after it (\b, \fs24): a letter, digit or '-' written next would
// be read as part of it.
func scRTFWordEnds(before []byte) bool {
	i := len(before)
	for i > 0 && '0' <= before[i-1] && before[i-1] <= '9' {
		i--
	}
	if i > 0 && before[i-1] == '-' {
		i--
	}
	k := i
	for k > 0 && scIs(rune(before[k-1]), scAlpha) {
		k--
	}
	if k == i || k == 0 || before[k-1] != '\\' {
		return false
	}
	n := len(before[:k]) - len(bytes.TrimRight(before[:k], `\`)) // an escaped backslash is text
	return n%2 == 1
}

// scRTFGlues reports whether removing src[s0:e0] leaves a control word
// without its end right before a character that would then extend it or
// be taken as its delimiter (`\b.com x` without ".com" would swallow the
// space).
func scRTFGlues(src []byte, s0, e0 int) bool {
	if e0 >= len(src) || !scRTFWordEnds(src[:s0]) {
		return false
	}
	c := src[e0]
	return c == ' ' || c == '-' || scIs(rune(c), scAlnum)
}
