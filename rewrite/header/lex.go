package header

// This file splits a structured header field body into the lexical tokens
// of RFC 5322 section 3.2. It never fails on syntax: a quote, parenthesis or
// bracket that is never closed becomes a one-byte special, and lexing goes
// on, so that an address after a stray '"' is still seen.

// hdrKind classifies a token.
type hdrKind uint8

const (
	hkSpace   hdrKind = iota // WSP; also CR or LF left by sloppy unfolding
	hkAtom                   // atext run, plus any byte no other kind claims (UTF-8 per RFC 6532, controls)
	hkQuoted                 // quoted-string, quotes included (3.2.4)
	hkComment                // comment, parentheses included, nested (3.2.2)
	hkLiteral                // domain-literal, brackets included (3.4.1)
	hkWord                   // RFC 2047 encoded-word
	hkSpecial                // one byte: < > @ , ; : . \ or an unmatched ( ) " [ ]
)

// hdrTok is one token: s[start:end] of the lexed string.
type hdrTok struct {
	kind       hdrKind
	c          byte // the byte of a special
	start, end int
}

// hdrEndsAtom marks the bytes that end an atom: white space and the
// specials of RFC 5322 section 3.2.3 ('.' included, so that a dot-atom lexes
// as atoms and dots). A table: the lexer asks for every byte.
var hdrEndsAtom = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n()<>[]:;@\\,.\"") {
		t[c] = true
	}
	return t
}()

// hdrLex appends the tokens of s to toks. Scans for a closing quote,
// parenthesis or bracket that fail cost up to len(s) each; a budget bounds
// their sum so that hostile input ("((((…") stays linear, and ok=false
// reports input that exhausted it. The budget allows some 64 unclosed
// openers in any value, far more in short ones: real mail has a few.
func hdrLex(s string, toks []hdrTok) (out []hdrTok, ok bool) {
	budget := 64*len(s) + 1<<16
	for i := 0; i < len(s); {
		t := hdrTok{kind: hkSpecial, c: s[i], start: i, end: i + 1}
		switch c := s[i]; {
		case isHdrSpace(c):
			t.kind, t.end = hkSpace, hdrSpaceEnd(s, i)
		case c == '"' || c == '(' || c == '[':
			if end := hdrClose(s, i); end > 0 {
				t.kind, t.end = hdrDelimitedKind(c), end
			} else if budget -= len(s) - i; budget < 0 {
				return toks, false
			}
		case hdrEndsAtom[c]:
		default:
			t.kind, t.end = hdrAtomOrWord(s, i)
		}
		toks = append(toks, t)
		i = t.end
	}
	return toks, true
}

func isHdrSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func hdrSpaceEnd(s string, i int) int {
	for i < len(s) && isHdrSpace(s[i]) {
		i++
	}
	return i
}

func hdrDelimitedKind(open byte) hdrKind {
	switch open {
	case '"':
		return hkQuoted
	case '(':
		return hkComment
	}
	return hkLiteral
}

// hdrClose returns the end (after the closing byte) of the quoted-string,
// comment or domain-literal opening at s[i], or -1 when it is never closed.
// Quoted-pairs escape the next byte in all three (RFC 5322 3.2.1, 4.4);
// only comments nest (3.2.2).
func hdrClose(s string, i int) int {
	open, closer, depth := s[i], byte(')'), 1
	switch open {
	case '"':
		closer = '"'
	case '[':
		closer = ']'
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case closer:
			if depth--; depth == 0 {
				return j + 1
			}
		case open:
			if open == '(' {
				depth++
			}
		}
	}
	return -1
}

// hdrAtomOrWord lexes the atom or encoded-word at s[i]. An encoded-word is
// recognized even when glued to an atom (RFC 2047 section 5 forbids it, but
// mailers do it and a hidden address must not slip through), so an atom
// ends where one begins.
func hdrAtomOrWord(s string, i int) (hdrKind, int) {
	if w, ok := hdrWordAt(s, i); ok {
		return hkWord, w.end
	}
	j := i + 1
	for ; j < len(s); j++ {
		c := s[j]
		if hdrEndsAtom[c] {
			break
		}
		if c == '=' && j+1 < len(s) && s[j+1] == '?' {
			if _, ok := hdrWordAt(s, j); ok {
				break
			}
		}
	}
	return hkAtom, j
}
