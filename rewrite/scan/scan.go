package scan

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"sync"
)

// ReplaceAddresses finds every e-mail address in src, a decoded body text
// of the given kind, and replaces each one for which fn returns a non-empty
// replacement. It returns the new text and whether anything changed; when
// nothing changed it returns src itself (same slice), so callers can emit
// the original bytes. fn's error stops the scan and is returned as is.
//
// An address is a dot-atom local part, '@' and a host name of two or more
// labels ending in an alphabetic, IDN or A-label top-level label; see
// scMatcher.local and scMatcher.domain for where one starts and ends.
// fn sees each address decoded (character references, percent-encoding,
// folding and escapes undone) and as written otherwise, in the order of
// the text, after the whole text was scanned. A replacement is written in
// the form of the text around it:
// percent-encoded where the '@' was "%40", escaped in HTML, and in
// iCalendar and vCard text the changed content lines are folded again.
func ReplaceAddresses(kind TextKind, src []byte, fn AddrFunc) ([]byte, bool, error) {
	if !scMayHold(kind, src) {
		return src, false, nil
	}
	s := scPool.Get().(*scanner)
	defer s.release()
	s.kind, s.src = kind, src
	switch kind {
	case TextHTML:
		s.scanHTML()
	case TextFolded:
		s.scanFolded()
	case TextFlowed, TextFlowedDelSp:
		s.scanFlowed()
	case TextRTF:
		s.scanRTF()
	default:
		s.plain = scView{b: src}
		s.matchView(&s.plain, false)
	}
	return s.finish(fn)
}

// scMayHold reports whether src may hold an address at all: the common
// case of a text without one costs a few byte searches and no allocation.
func scMayHold(kind TextKind, src []byte) bool {
	switch {
	case bytes.IndexByte(src, '@') >= 0:
		return true
	case kind == TextFolded:
		return bytes.IndexByte(src, '%') >= 0 // "%40" may be folded
	case kind == TextRTF && (bytes.Contains(src, []byte(`\'40`)) || bytes.Contains(src, []byte(`\u64`))):
		return true
	case bytes.Contains(src, scPct40):
		return true
	}
	return kind == TextHTML && (scHasEntityAt(src) || bytes.Contains(src, scPctTag) || bytes.Contains(src, scPct4Tag))
}

// "%40" can also be written with a tag inside it ("%<b>40</b>"), which
// the text view joins: without a '@', "%40" or a reference that makes
// one, such a text is scanned all the same. Whether a text is scanned
// must not depend on what else the part holds: a large part is scanned in
// pieces (HTMLCut), each of which must find what the whole finds.
var scPctTag, scPct4Tag = []byte("%<"), []byte("%4<")

// scanner holds one scan's state; its buffers are pooled, so a steady
// stream of messages allocates little beyond the output.
type scanner struct {
	kind   TextKind
	src    []byte
	plain  scView // the source itself (TextPlain); never appended to
	v, tag scView // HTML text, or unfolded text; one HTML tag
	entAt  bool   // HTML: some character reference decodes to a character of an '@' or "%40"
	found  []scFound
	frags  []scFrag
	edits  []scEdit
	abuf   []byte
	line   []byte
}

// scFound is an address found, and what fn made of it.
type scFound struct {
	lo, hi     int // its source fragments: frags[lo:hi]
	start      int // where its first fragment starts
	addr, repl string
	pct        bool // its '@' was percent-encoded: so is the replacement
	inTag      bool // HTML: inside a tag or comment, not in text
}

// scEdit replaces one fragment: the first fragment of an address gets the
// replacement, the others (beyond tags or folds) are removed.
type scEdit struct {
	s, e, found int
	first       bool
}

var scPool = sync.Pool{New: func() any { return new(scanner) }}

func (s *scanner) release() {
	clear(s.found) // drop the strings
	s.src, s.plain = nil, scView{}
	s.found, s.frags, s.edits = s.found[:0], s.frags[:0], s.edits[:0]
	if cap(s.v.b) > 8<<20 || cap(s.v.pieces) > 256<<10 {
		s.v = scView{} // do not keep a huge message's buffers
	}
	scPool.Put(s)
}

// finish asks fn about each address in text order, then writes the result.
func (s *scanner) finish(fn AddrFunc) ([]byte, bool, error) {
	slices.SortFunc(s.found, func(a, b scFound) int { return cmp.Compare(a.start, b.start) })
	changed := false
	for i := range s.found {
		r, err := fn(s.found[i].addr)
		if err != nil {
			return nil, false, err
		}
		s.found[i].repl, changed = r, changed || r != ""
	}
	if !changed {
		return s.src, false, nil
	}
	for i, f := range s.found {
		if f.repl == "" {
			continue
		}
		for k := f.lo; k < f.hi; k++ {
			s.edits = append(s.edits, scEdit{s: s.frags[k].s, e: s.frags[k].e, found: i, first: k == f.lo})
		}
	}
	slices.SortFunc(s.edits, func(a, b scEdit) int { return cmp.Compare(a.s, b.s) })
	if s.kind == TextFolded {
		return s.refold(), true, nil
	}
	return s.splice(), true, nil
}

// splice copies the source with the edits applied.
func (s *scanner) splice() []byte {
	out := make([]byte, 0, len(s.src)+len(s.src)/16+64)
	prev := 0
	for _, e := range s.edits {
		out = append(out, s.src[prev:e.s]...)
		if e.first {
			out = s.encode(out, &s.found[e.found], e.s)
		} else if s.keepApart(e.s, e.e) {
			out = append(out, ' ')
		}
		prev = e.e
	}
	return append(out, s.src[prev:]...)
}

// keepApart reports whether removing source range [s0, e0), a later
// piece of a replaced address, would make what comes after it read
// differently; a space then goes in its place.
func (s *scanner) keepApart(s0, e0 int) bool {
	switch s.kind {
	case TextFlowed, TextFlowedDelSp:
		return s.scFlowedRestuff(s0, e0)
	case TextRTF:
		return scRTFGlues(s.src, s0, e0)
	}
	return false
}

// encode appends f's replacement in the form of the text at source offset
// at: percent-encoded (RFC 3986 section 2.1) where the '@' was, and with
// HTML's special characters escaped.
func (s *scanner) encode(out []byte, f *scFound, at int) []byte {
	r := f.repl
	if f.pct {
		r = scPercentEncode(r, scPctGlues(s.src[:at], r))
	}
	if s.kind == TextRTF {
		return scRTFEncode(out, r, s.src[:at])
	}
	if s.kind != TextHTML {
		return append(out, r...)
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case i == 0 && scGlues(s.src[:at], c, f.inTag):
			out = append(strconv.AppendInt(append(out, "&#"...), int64(c), 10), ';')
		case c == '&':
			out = append(out, "&amp;"...)
		case c == '<':
			out = append(out, "&lt;"...)
		case c == '>':
			out = append(out, "&gt;"...)
		case c == '"':
			out = append(out, "&quot;"...)
		case c == '\'':
			out = append(out, "&#39;"...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// scPercentEncode keeps RFC 3986 unreserved characters and encodes the
// rest, '@' included, and the first character too if first is set.
func scPercentEncode(r string, first bool) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(r)+8)
	for i := 0; i < len(r); i++ {
		c := r[i]
		if (i > 0 || !first) && (scIs(rune(c), scAlnum) || c == '-' || c == '.' || c == '_' || c == '~') {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

// scPctGlues reports whether r, written after before, would complete a
// percent-encoded octet left open there ("%4" then "0…").
func scPctGlues(before []byte, r string) bool {
	n := len(before)
	if r == "" || !scIs(rune(r[0]), scHex) {
		return false
	}
	return n > 0 && before[n-1] == '%' || n > 1 && before[n-2] == '%' && scIs(rune(before[n-1]), scHex)
}

// scGlues reports whether c, written in HTML right after before, would be
// read together with it: as a tag ("<" then a letter) or as part of a
// character reference ("&", "&#12" then a digit). Such a c is written as
// a reference itself.
func scGlues(before []byte, c byte, inTag bool) bool {
	n := len(before)
	switch {
	case n == 0:
		return false
	case before[n-1] == '<':
		return !inTag && (scIs(rune(c), scAlpha) || c == '/' || c == '!' || c == '?')
	case before[n-1] == '&':
		return scIs(rune(c), scAlnum) || c == '#'
	}
	i := n
	for i > 0 && i > n-8 && scIs(rune(before[i-1]), scHex) {
		i--
	}
	if i > 0 && before[i-1]|0x20 == 'x' {
		i--
	}
	return i >= 2 && before[i-2] == '&' && before[i-1] == '#' && scIs(rune(c), scAlnum)
}
