package scan

import "unicode"

// Character classes of the body text scanner, for ASCII. Non-ASCII
// characters are classified by scLocalRune and scDomainRune.
const (
	scLocal  = 1 << iota // atext or '.': may be part of a dot-atom local part (RFC 5322 section 3.2.3)
	scDomain             // letter, digit, '-' or '.': LDH host names (RFC 1035 section 2.3.1, RFC 5321 section 4.1.2)
	scAlnum              // letter or digit: the first character of a local part or a label
	scCut                // '=', '?', '&', '/', '#': atext, but URL and parameter syntax in practice
	scAlpha              // letter: a top-level label is letters only
	scHex                // hexadecimal digit
)

var scClass = func() (t [128]uint8) {
	for c := 0; c < 128; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = scLocal | scDomain | scAlnum | scAlpha
		case c >= '0' && c <= '9':
			t[c] = scLocal | scDomain | scAlnum
		}
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			t[c] |= scHex
		}
	}
	for _, c := range "!#$%&'*+-/=?^_`{|}~." {
		t[c] |= scLocal
	}
	for _, c := range "=?&/#" {
		t[c] |= scCut
	}
	t['-'] |= scDomain
	t['.'] |= scDomain
	return t
}()

// scIs reports whether r is an ASCII character of one of the classes.
func scIs(r rune, class uint8) bool { return r < 0x80 && r >= 0 && scClass[r]&class != 0 }

// scWordRune reports whether a non-ASCII character may be part of an
// address. RFC 6531 allows any UTF-8 in a local part, but prose wraps
// addresses in typographic quotes, no-break spaces and dashes: only
// letters, combining marks and digits count, so “jane@example.com” is
// found without its quotes.
func scWordRune(r rune) bool {
	return r >= 0x80 && r != 0xfffd && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r))
}

// scInvisible reports whether r is a character with no width, which
// senders put into addresses to stop mail clients from linking them
// ("jane&#8203;@example.com", "jane@&zwnj;example.com"): a reader sees
// the address all the same. The scanner reads through it, and leaves it
// out of the address it reports.
func scInvisible(r rune) bool {
	switch r {
	case 0xad, 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff:
		return true
	}
	return false
}

func scLocalRune(r rune) bool  { return scIs(r, scLocal) || scWordRune(r) }
func scDomainRune(r rune) bool { return scIs(r, scDomain) || scWordRune(r) }

// scAlnumRune reports whether r may start a local part or a label.
func scAlnumRune(r rune) bool {
	return scIs(r, scAlnum) || r >= 0x80 && r != 0xfffd && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// scSpaceless reports whether r belongs to a script written without spaces
// between words. Such text runs straight into an address
// ("連絡先jane@example.comまで"), so a switch between it and ASCII ends
// a local part or a domain.
func scSpaceless(r rune) bool {
	// Thai, the first of these scripts, starts at U+0E00.
	return r >= 0xe00 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul,
		unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar)
}

// unhex is the value of a hex digit the caller has checked (the byte
// classes mark hex digits).
func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
