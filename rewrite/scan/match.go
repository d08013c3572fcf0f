package scan

import (
	"bytes"
	"sort"
	"unicode/utf8"
)

var scPct40 = []byte("%40")

// matchView finds the addresses in a view, left to right. Every '@' and
// every "%40" is a candidate; a candidate's own '@' ends the local part of
// the next one, and a match ends where the next may begin (clamp), so each
// byte is looked at a bounded number of times.
func (s *scanner) matchView(v *scView, inTag bool) {
	b := v.b
	at, pct := bytes.IndexByte(b, '@'), bytes.Index(b, scPct40)
	clamp, prev := 0, scPrev{end: -1}
	for at >= 0 || pct >= 0 {
		p, n := at, 1
		if at < 0 || pct >= 0 && pct < at {
			p, n = pct, 3
		}
		m := scMatcher{v: v, pct: n == 3}
		if ls, de := m.match(p, n, clamp, prev); de >= 0 {
			s.addFound(&m, ls, p, n, de, inTag)
			clamp, prev = de, scPrev{end: de, block: v.blockIn(ls, de)}
		} else {
			clamp = p + n
		}
		if at >= 0 && at < clamp {
			at = scIndexFrom(b, clamp, func(b []byte) int { return bytes.IndexByte(b, '@') })
		}
		if pct >= 0 && pct < clamp {
			pct = scIndexFrom(b, clamp, func(b []byte) int { return bytes.Index(b, scPct40) })
		}
	}
}

func scIndexFrom(b []byte, from int, index func([]byte) int) int {
	if i := index(b[from:]); i >= 0 {
		return from + i
	}
	return -1
}

// addFound records the match of local part [ls, p) and domain [p+n, de).
func (s *scanner) addFound(m *scMatcher, ls, p, n, de int, inTag bool) {
	a := m.appendText(s.abuf[:0], ls, p)
	a = m.appendText(append(a, '@'), p+n, de)
	s.abuf = a
	lo := len(s.frags)
	s.frags = m.v.frags(s.frags, ls, de)
	s.found = append(s.found, scFound{lo: lo, hi: len(s.frags), start: s.frags[lo].s,
		addr: string(a), pct: m.pct, inTag: inTag})
}

// appendText appends the decoded text of view range [i, e), without the
// invisible characters.
func (m *scMatcher) appendText(a []byte, i, e int) []byte {
	for i < e {
		r, nx := m.unitAt(i)
		if !scInvisible(r) {
			a = utf8.AppendRune(a, r)
		}
		i = nx
	}
	return a
}

// scMatcher reads one candidate's surroundings in a view. With pct set the
// candidate's '@' was "%40": the address is in a URL, and %XX sequences in
// it are decoded (RFC 3986 section 2.1).
type scMatcher struct {
	v   *scView
	pct bool
}

// scPrev is what the next candidate needs to know of the previous match.
type scPrev struct {
	end   int  // where it ends
	block bool // a block boundary lies inside it
}

// match returns the view offsets where the local part of the candidate '@'
// at p (n bytes long) starts and where its domain ends, or de < 0.
func (m *scMatcher) match(p, n, clamp int, prev scPrev) (ls, de int) {
	ls = m.local(p, clamp)
	if ls < 0 {
		return -1, -1
	}
	if m.schemeBefore(ls, "cid:", prev.end) || m.schemeBefore(ls, "mid:", prev.end) {
		return -1, -1
	}
	// A local part that starts where the previous address ended would run
	// into that address once it is replaced, and be read differently;
	// unless a block boundary parts them, as it will after the rewrite
	// when it lies inside the previous address (the rewrite keeps tags and
	// writes the replacement before them).
	if ls == prev.end && !m.v.isBlock(ls) && !prev.block {
		return -1, -1
	}
	return ls, m.domain(p + n)
}

// schemeBefore reports whether the URL scheme (RFC 2392: "cid:" and
// "mid:" name MIME parts and messages, not mailboxes) ends at view offset
// i, as a word of its own and not within the previous match, which ends
// at from.
func (m *scMatcher) schemeBefore(i int, scheme string, from int) bool {
	b, k := m.v.b, i-len(scheme)
	if k < max(from, 0) || !bytes.EqualFold(b[k:i], []byte(scheme)) {
		return false
	}
	r, _ := utf8.DecodeLastRune(b[:k])
	return k == 0 || m.v.isBlock(k) || !scAlnumRune(r)
}

// unitAt decodes the character at view offset i, and returns it with the
// offset after it. A character never spans an HTML block boundary: bytes
// of one UTF-8 sequence in two table cells are no character, and reading
// them as one would tie an address to text a later match may replace.
func (m *scMatcher) unitAt(i int) (rune, int) {
	b := m.v.b
	if !m.pct {
		if b[i] < utf8.RuneSelf {
			return rune(b[i]), i + 1
		}
		r, size := utf8.DecodeRune(b[i:])
		if size > 1 && m.v.blockIn(i, i+size) {
			return utf8.RuneError, i + 1
		}
		return r, i + size
	}
	c, j := m.byteAt(i)
	if c < utf8.RuneSelf {
		return rune(c), j
	}
	// A UTF-8 sequence may mix raw and percent-encoded bytes.
	var buf [utf8.UTFMax]byte
	var ends [utf8.UTFMax]int
	buf[0], ends[0] = c, j
	k := 1
	for ; k < utf8.UTFMax && j < len(b) && !m.v.isBlock(j); k++ {
		c, j = m.byteAt(j)
		if c&0xc0 != 0x80 {
			break
		}
		buf[k], ends[k] = c, j
	}
	r, size := utf8.DecodeRune(buf[:k])
	return r, ends[size-1]
}

func (m *scMatcher) byteAt(i int) (byte, int) {
	b := m.v.b
	if b[i] == '%' && i+2 < len(b) && scIs(rune(b[i+1]), scHex) && scIs(rune(b[i+2]), scHex) {
		return unhex(b[i+1])<<4 | unhex(b[i+2]), i + 3
	}
	return b[i], i + 1
}

// local returns where the local part before the '@' at p starts, or -1.
// The local part is the run of atext and dots before the '@' (RFC 5322
// section 3.2.3), except that it starts after URL and parameter syntax
// ("?email=jane@…", "CN=jane@…"), after a switch from a spaceless script
// to ASCII, and, in HTML, after a block boundary when text follows it
// ("<td>Email</td><td>jane@…"). Leading punctuation is not part of it,
// and what remains must be a dot-atom: a run with ".." is no address, and
// no shorter address is carved out of it.
func (m *scMatcher) local(p, clamp int) int {
	b := m.v.b
	a := p
	for a > clamp && (b[a-1] >= utf8.RuneSelf || scClass[b[a-1]]&scLocal != 0) {
		a--
	}
	start, blk, blkAlnum, wide := a, -1, false, false
	eq, preEq := -1, -1
	blocks := m.v.blocks
	bi := sort.SearchInts(blocks, a+1)
	for i := a; i < p; {
		for bi < len(blocks) && blocks[bi] < i {
			bi++
		}
		if bi < len(blocks) && blocks[bi] == i && i > start {
			blk, blkAlnum = i, false
		}
		r, nx := m.unitAt(i)
		if scInvisible(r) {
			i = nx
			continue
		}
		switch {
		case r == '=':
			eq, preEq = nx, start
			if blk >= 0 && blkAlnum {
				preEq = blk
			}
			start, blk = nx, -1
		case !scLocalRune(r), scIs(r, scCut):
			start, blk = nx, -1
		case wide && scIs(r, scAlnum):
			start, blk = i, -1
		}
		blkAlnum = blkAlnum || blk >= 0 && scAlnumRune(r)
		wide, i = scSpaceless(r), nx
	}
	switch {
	case blk >= 0 && blkAlnum:
		start = blk
	case start == eq && m.verp(preEq, eq, p):
		start = preEq
	}
	return m.dotAtom(start, p)
}

// verp reports whether [pre, p) is a VERP or similar address that encodes
// another one ("bounces+jane=example.com@lists.example.org"): the part
// after the '=' ending at eq is a host name, the part before it holds '+'
// or '-'. Cutting it at the '=' would leave "jane" in the clear.
func (m *scMatcher) verp(pre, eq, p int) bool {
	sep := false
	for i := pre; i < eq-1 && !sep; {
		r, nx := m.unitAt(i)
		sep, i = r == '+' || r == '-', nx
	}
	return sep && m.domain(eq) == p
}

// dotAtom skips leading punctuation in [i, p) and returns where the rest
// starts if it is a dot-atom, or -1.
func (m *scMatcher) dotAtom(i, p int) int {
	ls, dot := -1, false
	for i < p {
		r, nx := m.unitAt(i)
		switch {
		case scInvisible(r), ls < 0 && !scAlnumRune(r):
		case r == '.' && dot:
			return -1
		default:
			if ls < 0 {
				ls = i
			}
			dot = r == '.'
		}
		i = nx
	}
	if dot {
		return -1
	}
	return ls
}

// domain returns where the domain starting at q ends, or -1. It is the
// longest run of labels that is a host name of at least two labels whose
// last label is letters (RFC 1123 section 2.1: a top-level label is
// alphabetic), wholly non-ASCII (an IDN top-level domain), or an A-label:
// "pkg@1.2.3" and "a@localhost" are no addresses, and in "jane@example.com."
// or "jane@example.com-" the trailing punctuation is left out.
func (m *scMatcher) domain(q int) int {
	b := m.v.b
	best, labels := -1, 0
	var l scLabel
	blocks := m.v.blocks
	bi := sort.SearchInts(blocks, q+1)
	i := q
	for i < len(b) {
		for bi < len(blocks) && blocks[bi] < i {
			bi++
		}
		if bi < len(blocks) && blocks[bi] == i && (best >= 0 || labels > 0 && l.top()) {
			break // "<td>jane@example.com</td><td>Phone": the cell ends the domain
		}
		r, nx := m.unitAt(i)
		if scInvisible(r) {
			i = nx
			continue
		}
		if !scDomainRune(r) || l.n == 0 && r != '.' && !scAlnumRune(r) {
			break
		}
		if labels > 0 && (r == '.' || r == '-' || l.ascii && scSpaceless(r)) && l.top() {
			best = i
		}
		if r == '.' {
			if !l.inner() {
				break
			}
			labels, l = labels+1, scLabel{}
		} else {
			l.add(r)
		}
		i = nx
	}
	if labels > 0 && l.top() {
		best = i
	}
	return best
}

// scLabel tracks one label of a domain as it is read.
type scLabel struct {
	n                 int  // characters
	alpha, wide, ldh  bool // ASCII letters only; non-ASCII only; ASCII only
	ascii, hyphenLast bool // the last character is ASCII; is '-'
	xn                int  // how much of "xn--" it starts with
}

func (l *scLabel) add(r rune) {
	if l.n == 0 {
		l.alpha, l.wide, l.ldh = true, true, true
	}
	if l.xn == l.n && l.n < 4 && r|0x20 == rune("xn--"[l.n])|0x20 {
		l.xn++
	}
	l.n++
	l.alpha = l.alpha && scIs(r, scAlpha)
	l.wide = l.wide && r >= utf8.RuneSelf
	l.ldh = l.ldh && r < utf8.RuneSelf
	l.ascii, l.hyphenLast = r < utf8.RuneSelf, r == '-'
}

// inner reports whether the label may be followed by a dot.
func (l *scLabel) inner() bool { return l.n > 0 && !l.hyphenLast }

// top reports whether the label may end a domain.
func (l *scLabel) top() bool {
	return l.inner() && (l.alpha && l.n >= 2 || l.wide || l.xn == 4 && l.n > 4 && l.ldh)
}
