package header

import (
	"strings"
	"unicode/utf8"
)

// isAtext reports whether r may appear in an atom (RFC 5322 section 3.2.3,
// with RFC 6532's UTF-8): the display names the parser renders unquoted.
// It is tokenize's atext test, the one Normalize accepts local parts by,
// kept private here so the parser does not reach into the token map's
// package for a character class.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError && r != 0x85 && !(r >= 0x80 && r < 0xa0)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isHex and unhex read the hex digits of Q-encoded octets (RFC 2047
// section 4.2). The body scanner keeps its own unexported pair: two small
// functions do not justify an exported helper.
func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unhex is the value of a hex digit checked by isHex.
func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
