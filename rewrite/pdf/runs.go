package pdf

import (
	"bytes"
	"slices"
	"sort"
)

// The strings of PDF syntax are read as a reader sees them (PDF 32000-1
// section 9.4.3): each string on its own, and the strings of one run
// joined without a separator, as the pieces of a TJ array or consecutive
// Tj operators are shown ("(jane.doe) Tj (@example.com) Tj"), font
// changes included; a dictionary key or delimiter ends a run. Joining may
// join more than a reader would: an address it makes up costs a refusal,
// one it missed would cost a leak.
//
// The scanner only finds an address around an '@' or a "%40", and never
// across a word break (breaks): so of each string, and of each run joined,
// only the words holding '@' or "%40" are scanned, each on a line of its
// own. A reading knows which of a string's codes read as '@' or '%'
// (hitStrings) and which read as a word break (cutIn) without decoding
// it, so only the strings around such a code are decoded: a page shown through a
// CMap has one address in thousands of strings. FuzzStringsPlain and
// FuzzStringsCMap check that this finds what reading every string does.

// run holds the strings of one run, escapes and hexadecimal undone, one
// after another: string i is raw[ends[i-1]:ends[i]].
type run struct {
	raw   []byte
	ends  []int
	utf16 bool // some string is UTF-16BE (utf16At)
}

func (r *run) str(i int) []byte {
	if i == 0 {
		return r.raw[:r.ends[0]]
	}
	return r.raw[r.ends[i-1]:r.ends[i]]
}

func (r *run) end() {
	start := 0
	if n := len(r.ends); n > 0 {
		start = r.ends[n-1]
	}
	r.ends = append(r.ends, len(r.raw))
	if len(r.raw)-start >= 2 && r.raw[start] == 0xFE && r.raw[start+1] == 0xFF {
		r.utf16 = true
	}
}

func (r *run) reset() { r.raw, r.ends, r.utf16 = r.raw[:0], r.ends[:0], false }

// reading reads strings as text: with a ToUnicode CMap, or, if cm is nil,
// as the file's strings are read (plainString).
type reading struct{ cm *cmap }

// cutIn reports whether some code of str reads as text with a word break
// in it. It never says yes when none does: a window must reach a break.
func (rd reading) cutIn(str []byte) bool {
	if rd.cm != nil {
		return rd.cm.anyCode(str, &rd.cm.cut)
	}
	if len(str) >= 2 && str[0] == 0xFE && str[1] == 0xFF {
		return indexBreak(textString(str)) >= 0
	}
	return indexBreak(str) >= 0
}

func (rd reading) appendText(dst, str []byte) []byte {
	if rd.cm == nil {
		return plainString(dst, str)
	}
	return rd.cm.decode(dst, str)
}

// breaks: the bytes at which the scanner's reading of plain text stops on
// both sides (scan.ReplaceAddresses, TextPlain): white space and control
// characters, and punctuation that neither a local part nor a domain
// holds. Not ':' ("cid:" before a local part tells the scanner it is none)
// and not '@' or '%'. TestBreaksPartText checks these against the
// scanner.
var breaks = func() (t [256]bool) {
	for c := 0; c <= ' '; c++ {
		t[c] = true
	}
	for _, c := range []byte("\x7f\"(),;<>[\\]") {
		t[c] = true
	}
	return t
}()

func indexBreak(b []byte) int {
	for i, c := range b {
		if breaks[c] {
			return i
		}
	}
	return -1
}

func lastBreak(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if breaks[b[i]] {
			return i
		}
	}
	return -1
}

// appendWords appends the words of text that hold '@' or "%40", the
// scanner's candidates, each followed by a newline.
func appendWords(dst, text []byte) []byte {
	for len(text) > 0 {
		i, pct := bytes.IndexByte(text, '@'), bytes.Index(text, scPct40)
		if i < 0 || pct >= 0 && pct < i {
			i = pct
		}
		if i < 0 {
			return dst
		}
		start := lastBreak(text[:i]) + 1
		end := indexBreak(text[i:])
		if end < 0 {
			end = len(text)
		} else {
			end += i
		}
		dst = append(append(dst, text[start:end]...), '\n')
		text = text[end:]
	}
	return dst
}

var scPct40 = []byte("%40")

// readRun appends to dst the words of r that rd can make an address of:
// those of each string on its own, and those of the run joined. A word
// of the joined run spans the strings from the nearest one before it
// with a break to the nearest one after it with a break: only those are
// decoded.
func (s *scanner) readRun(dst []byte, r *run, rd reading) []byte {
	n := len(r.ends)
	covered := -1 // strings before it lie in the last word already read
	s.hits = s.hitStrings(s.hits[:0], r, rd)
	for _, i := range s.hits {
		s.win = rd.appendText(s.win[:0], r.str(i))
		dst = appendWords(dst, s.win)
		if i < covered {
			continue
		}
		a, b := i, i
		for a > 0 && (a == i || !rd.cutIn(r.str(a))) {
			a--
		}
		for b < n-1 && (b == i || !rd.cutIn(r.str(b))) {
			b++
		}
		w, from := s.win[:0], 0
		for k := a; k <= b; k++ {
			start := len(w)
			w = rd.appendText(w, r.str(k))
			if k == a && k < i && rd.cutIn(r.str(k)) { // the word starts after its last break
				from = start + lastBreak(w[start:]) + 1
			}
			if k == b && k > i && rd.cutIn(r.str(k)) { // and ends at the first break of b
				w = w[:start+max(0, indexBreak(w[start:]))]
			}
		}
		s.win = w
		dst = appendWords(dst, w[from:])
		covered = b
	}
	return dst
}

// forRuns reads the strings of PDF syntax b into r, run by run, and calls
// fn at the end of each run that has strings.
func forRuns(b []byte, r *run, fn func(*run)) {
	r.reset()
	flush := func() {
		if len(r.ends) > 0 {
			fn(r)
		}
		r.reset()
	}
	for i := 0; i < len(b); {
		for i < len(b) && !stringsSpecial[b[i]] { // operators, numbers, space
			i++
		}
		if i == len(b) {
			break
		}
		switch b[i] {
		case '%': // a comment, to the end of the line
			j := bytes.IndexAny(b[i:], "\r\n")
			if j < 0 {
				i = len(b)
			} else {
				i += j
			}
			continue
		case '(':
			r.raw, i = appendLiteral(r.raw, b, i)
			r.end()
			continue
		case '/':
			i = nameEnd(b, i)
			if !selectsFont(b[i:]) {
				flush() // a dictionary key: another value follows
			}
			continue
		case '>':
			flush()
		case '<':
			if i+1 < len(b) && b[i+1] == '<' {
				flush()
				i += 2
				continue
			}
			// Pairs of digits up to '>', the usual form, read inline: a
			// string per glyph (LibreOffice) is a few bytes long.
			j, raw := i+1, r.raw // a local slice: appending to r.raw reloads it every byte
			for ; j+1 < len(b); j += 2 {
				hi, lo := hexValues[b[j]], hexValues[b[j+1]]
				if hi|lo > 0x0F {
					break
				}
				raw = append(raw, hi<<4|lo)
			}
			r.raw = raw
			if j < len(b) && b[j] == '>' {
				r.end()
				i = j + 1
				continue
			}
			k := bytes.IndexByte(b[j:], '>') // the rest as appendHex reads it
			if k < 0 {
				r.raw = r.raw[:len(r.raw)-(j-i-1)/2] // no string after all
				i = len(b)
				continue
			}
			r.raw = appendHex(r.raw, b[j:j+k])
			r.end()
			i = j + k + 1
			continue
		}
		i++
	}
	flush()
}

// hitStrings appends the indices of r's strings that may read as '@' or
// '%', ascending: it may name a string that does not, never leave out
// one that does. Where the reading has few such codes, the
// run's bytes are searched for each at once: a page's strings are
// thousands, and a code for '@' is in a handful.
func (s *scanner) hitStrings(hits []int, r *run, rd reading) []int {
	var codes [][]byte
	width := 1
	switch {
	case rd.cm == nil:
		codes = plainAt
	case !rd.cm.at.many:
		codes, width = rd.cm.at.few, rd.cm.width
	default:
		for i := range r.ends {
			if rd.cm.anyCode(r.str(i), &rd.cm.at) {
				hits = append(hits, i)
			}
		}
		return hits
	}
	for _, code := range codes {
		for from := 0; ; {
			p := bytes.Index(r.raw[from:], code)
			if p < 0 {
				break
			}
			p += from
			if rd.cm == nil && !r.utf16 && code[0] == '%' && !bytes.HasPrefix(r.raw[p:], scPct40) {
				from = p + 1 // no "%40" here, whatever the strings (plainHit)
				continue
			}
			k := sort.SearchInts(r.ends, p+1) // the string holding p
			start := 0
			if k > 0 {
				start = r.ends[k-1]
			}
			if p+len(code) > r.ends[k] || (p-start)%width != 0 || rd.cm == nil && !plainHit(r, k, p) {
				from = p + 1
				continue
			}
			hits = append(hits, k)
			from = r.ends[k]
		}
	}
	if len(codes) > 1 {
		slices.Sort(hits)
		hits = slices.Compact(hits)
	}
	return hits
}

var plainAt = [][]byte{{'@'}, {'%'}}

// plainHit reports whether the '@' or '%' at r.raw[p], in string k, may
// make a candidate of the scanner as the strings read as they are: a '%'
// only as "%40", which may go on into the next strings, unless a string
// it reaches is UTF-16 (its "%40" is no such bytes).
func plainHit(r *run, k, p int) bool {
	if r.raw[p] == '@' || utf16At(r, k) {
		return true
	}
	for q := p + 1; q <= p+2; q++ {
		if q == len(r.raw) {
			return false // the run ends: nothing follows the '%'
		}
		for q == r.ends[k] {
			k++
			if utf16At(r, k) {
				return true
			}
		}
		if r.raw[q] != "40"[q-p-1] {
			return false
		}
	}
	return true
}

// utf16At reports whether string k of r is a UTF-16BE text string.
func utf16At(r *run, k int) bool {
	str := r.str(k)
	return len(str) >= 2 && str[0] == 0xFE && str[1] == 0xFF
}
