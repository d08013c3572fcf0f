package scan

import (
	"bytes"
	"html"
	"unicode/utf8"
)

// scEntity decodes the character reference at the start of b (HTML
// 13.2.5.72-80) and returns the character and the reference's length, or
// n == 0 if b starts with none. Numeric references may lack their ';', as
// browsers accept; named ones need it. Names missing from scNamedRefs are
// looked up in the full HTML table when full is set, at the cost of an
// allocation.
func scEntity(b []byte, full bool) (r rune, n int) {
	if len(b) < 3 || b[0] != '&' {
		return 0, 0
	}
	if b[1] == '#' {
		return scNumericRef(b)
	}
	i := 1
	for i < len(b) && i <= 32 && scIs(rune(b[i]), scAlnum) {
		i++
	}
	if i == 1 || i >= len(b) || b[i] != ';' {
		return 0, 0
	}
	if r, ok := scNamedRefs[string(b[1:i])]; ok {
		return r, i + 1
	}
	if full {
		ref := string(b[:i+1])
		if u := html.UnescapeString(ref); u != ref && utf8.RuneCountInString(u) == 1 {
			r, _ := utf8.DecodeRuneInString(u)
			return r, i + 1
		}
	}
	return 0, 0
}

// scNumericRef decodes "&#64;", "&#x40;", "&#X40" and the like. Code
// points HTML replaces (NUL, surrogates, C1 controls, beyond Unicode)
// become U+FFFD, which ends any address.
func scNumericRef(b []byte) (rune, int) {
	i, base := 2, 10
	if i < len(b) && b[i]|0x20 == 'x' {
		i, base = 3, 16
	}
	start, v := i, 0
	for ; i < len(b); i++ {
		c := b[i]
		if !(c >= '0' && c <= '9' || base == 16 && scIs(rune(c), scHex)) {
			break
		}
		if v <= utf8.MaxRune {
			v = v*base + int(unhex(c))
		}
	}
	if i == start {
		return 0, 0
	}
	if i < len(b) && b[i] == ';' {
		i++
	}
	if v == 0 || v > utf8.MaxRune || v >= 0xd800 && v <= 0xdfff || v >= 0x80 && v <= 0x9f {
		return utf8.RuneError, i
	}
	return rune(v), i
}

// scNamedRefs holds the named references an address can be written with
// (HTML 13.5), the ones that commonly surround one, and Latin letters.
var scNamedRefs = func() map[string]rune {
	m := map[string]rune{
		"commat": '@', "period": '.', "hyphen": '-', "dash": '-', "lowbar": '_', "UnderBar": '_',
		"plus": '+', "percnt": '%', "amp": '&', "AMP": '&', "lt": '<', "LT": '<', "gt": '>', "GT": '>',
		"quot": '"', "QUOT": '"', "apos": '\'', "nbsp": 0xa0, "NonBreakingSpace": 0xa0,
		"num": '#', "equals": '=', "quest": '?', "sol": '/', "colon": ':', "semi": ';', "comma": ',',
		"excl": '!', "dollar": '$', "ast": '*', "lpar": '(', "rpar": ')', "lsqb": '[', "rsqb": ']',
		"lbrack": '[', "rbrack": ']', "lcub": '{', "rcub": '}', "lbrace": '{', "rbrace": '}',
		"verbar": '|', "vert": '|', "grave": '`', "Hat": '^', "tilde": '~', "bsol": '\\', "Tab": '\t',
		"NewLine": '\n', "shy": 0xad, "zwnj": 0x200c, "zwj": 0x200d, "ensp": 0x2002, "emsp": 0x2003,
		"thinsp": 0x2009, "ndash": 0x2013, "mdash": 0x2014, "hellip": 0x2026, "bull": 0x2022,
		"middot": 0xb7, "laquo": 0xab, "raquo": 0xbb, "lsquo": 0x2018, "rsquo": 0x2019,
		"ldquo": 0x201c, "rdquo": 0x201d, "copy": 0xa9, "reg": 0xae, "trade": 0x2122,
	}
	// Latin letters with diacritics (é, ü, ß…), from the standard table.
	for _, base := range "AaEeIiOoUuYyCcNnSsZz" {
		for _, mark := range []string{"grave", "acute", "circ", "tilde", "uml", "ring", "cedil", "caron"} {
			name := string(base) + mark
			if u := html.UnescapeString("&" + name + ";"); utf8.RuneCountInString(u) == 1 {
				r, _ := utf8.DecodeRuneInString(u)
				m[name] = r
			}
		}
	}
	for _, name := range []string{"AElig", "aelig", "szlig", "oslash", "Oslash", "eth", "ETH", "thorn", "THORN"} {
		r, _ := utf8.DecodeRuneInString(html.UnescapeString("&" + name + ";"))
		m[name] = r
	}
	return m
}()

// scHasEntityAt reports whether some character reference in src stands
// for '@', or for a character of "%40": with a raw '%', "&#52;&#48;" makes
// one as well as "&#37;40" does.
func scHasEntityAt(src []byte) bool {
	for i := 0; i < len(src); {
		k := bytes.IndexByte(src[i:], '&')
		if k < 0 {
			return false
		}
		i += k
		r, n := scEntity(src[i:], false)
		if r == '@' || r == '%' || r == '4' || r == '0' {
			return true
		}
		i += max(n, 1)
	}
	return false
}
