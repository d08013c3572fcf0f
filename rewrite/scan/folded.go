package scan

import "bytes"

// scMaxLine is the longest content line, in octets without the line break,
// that folding leaves (RFC 5545 section 3.1, RFC 6350 section 3.2).
const scMaxLine = 75

// scanFolded scans iCalendar or vCard text in its unfolded view: a line
// break followed by a space or tab is removed (RFC 5545 section 3.1; bare
// LF too, as some writers use it), and the escapes \n \N \, \; \\ of
// TEXT values (RFC 5545 section 3.3.11, RFC 6350 section 3.4) are
// undone, so "\,jane@example.com" does not take the comma or backslash
// into the address and "\njane@…" does not take the n.
func (s *scanner) scanFolded() {
	src, v := s.src, &s.v
	v.resetFor(len(src))
	nl, bs := scNext(src, 0, '\n'), scNext(src, 0, '\\')
	for i := 0; i < len(src); {
		if nl < i {
			nl = scNext(src, i, '\n')
		}
		if bs < i {
			bs = scNext(src, i, '\\')
		}
		j := min(nl, bs)
		switch {
		case j == len(src):
			v.copyOf(src, i, j)
			i = j
		case j == nl && scIsFold(src, j):
			e := j
			if e > i && src[e-1] == '\r' {
				e--
			}
			v.copyOf(src, i, e)
			i = j + 2
		case j == nl:
			v.copyOf(src, i, j+1)
			i = j + 1
		default:
			v.copyOf(src, i, j)
			i = s.unescape(j)
		}
	}
	if v.pieces == nil {
		v.pieces = []scPiece{}
	}
	s.matchView(v, false)
}

// unescape adds the escape starting with the backslash at src[j] to the
// view and returns the offset after it.
func (s *scanner) unescape(j int) int {
	src := s.src
	k := j + 1
	for { // a fold may come between the backslash and its character
		if k+1 < len(src) && src[k] == '\r' && scIsFold(src, k+1) {
			k += 3
		} else if k < len(src) && scIsFold(src, k) {
			k += 2
		} else {
			break
		}
	}
	if k < len(src) {
		switch c := src[k]; c {
		case 'n', 'N':
			s.v.decoded(j, k+1, '\n')
			return k + 1
		case ',', ';', '\\':
			s.v.decoded(j, k+1, rune(c))
			return k + 1
		}
	}
	s.v.copyOf(src, j, j+1)
	return j + 1
}

func scNext(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}

// scIsFold reports whether the LF at b[i] starts a fold.
func scIsFold(b []byte, i int) bool {
	return b[i] == '\n' && i+1 < len(b) && (b[i+1] == ' ' || b[i+1] == '\t')
}

// refold copies the source with the edits applied. Each content line with
// an edit is unfolded, edited and folded again at scMaxLine octets; every
// other line stays as it was, byte for byte.
func (s *scanner) refold() []byte {
	src := s.src
	out := make([]byte, 0, len(src)+len(src)/16+64)
	prev := 0
	for k := 0; k < len(s.edits); {
		ls, le, eol := scContentLine(src, s.edits[k].s)
		// A line that starts with a fold must keep it: unfolded, it starts
		// with white space, which would fold it into the line before.
		lead := 0
		if ls > 0 && scIsFold(src, ls) {
			lead = 2
		} else if ls > 0 && src[ls] == '\r' && ls+1 < len(src) && scIsFold(src, ls+1) {
			lead = 3
		}
		out = append(out, src[prev:ls+lead]...)
		line, pos := s.line[:0], ls+lead
		for ; k < len(s.edits) && s.edits[k].s < le; k++ {
			e := s.edits[k]
			line = scUnfold(line, src[pos:e.s])
			if e.first {
				line = s.encode(line, &s.found[e.found], e.s)
			}
			pos = e.e
		}
		line = scUnfold(line, src[pos:le])
		out, s.line, prev = scFold(out, line, eol, scMaxLine-min(lead, 1)), line, le
	}
	return append(out, src[prev:]...)
}

// scContentLine returns the bounds of the content line holding offset p,
// without its line break, and the line break to fold it with.
func scContentLine(src []byte, p int) (ls, le int, eol string) {
	for i := p - 1; i >= 0; i-- {
		if src[i] == '\n' && !scIsFold(src, i) {
			ls = i + 1
			break
		}
	}
	for i := p; ; i++ {
		k := bytes.IndexByte(src[i:], '\n')
		if k < 0 {
			eol = "\r\n"
			if j := bytes.IndexByte(src, '\n'); j >= 0 && (j == 0 || src[j-1] != '\r') {
				eol = "\n"
			}
			return ls, len(src), eol
		}
		if i += k; !scIsFold(src, i) {
			if i > ls && src[i-1] == '\r' {
				return ls, i - 1, "\r\n"
			}
			return ls, i, "\n"
		}
	}
}

// scUnfold appends b to dst without its folds.
func scUnfold(dst, b []byte) []byte {
	for {
		k := bytes.IndexByte(b, '\n')
		if k < 0 || !scIsFold(b, k) {
			if k < 0 {
				return append(dst, b...)
			}
			dst = append(dst, b[:k+1]...)
			b = b[k+1:]
			continue
		}
		e := k
		if e > 0 && b[e-1] == '\r' {
			e--
		}
		dst = append(dst, b[:e]...)
		b = b[k+2:]
	}
}

// scFold appends line to out folded: lines of at most scMaxLine octets, a
// continuation line starting with a space, and no UTF-8 sequence split.
// The first line holds at most lim octets.
func scFold(out, line []byte, eol string, lim int) []byte {
	for len(line) > lim {
		cut := lim
		for cut > 0 && line[cut]&0xc0 == 0x80 {
			cut--
		}
		if cut == 0 {
			cut = lim
		}
		sep := eol
		if line[cut-1] == '\r' {
			sep = "\r\n" // a bare CR and an LF would read as a CRLF fold
		}
		out = append(append(append(out, line[:cut]...), sep...), ' ')
		line, lim = line[cut:], scMaxLine-1
	}
	return append(out, line...)
}
