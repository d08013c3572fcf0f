package pdf

import "bytes"

// A page shown in a subset font's codes, as LibreOffice writes it
// ("[<01>2<02>2<03>…]TJ", a string per glyph), is thousands of strings,
// and on most pages none of them holds a code that reads as '@' or '%'.
// Tokenizing such a page into runs (forRuns) finds nothing to read, and
// was half of the scan of a LibreOffice export. mayHit tells those pages
// for certain and cheaply: it reads only the bytes of their hexadecimal
// strings, against a table of the bytes some string must hold for any
// reading to find a hit (hitStrings); the words readRun reads are all
// around a hit, so a stream without one has none. Where it cannot be sure
// (a literal string, whose escapes can make any byte; a comment; a
// hexadecimal string with anything but pairs of digits in it, read as
// appendHex reads it) it says yes, and the stream is read as before.
// FuzzSkip checks that a stream it says no to has no word to read, and
// FuzzStringsPlain and FuzzStringsCMap that readStrings, skip included,
// finds what reading every string finds.

// hitBytes sets t to the bytes of which some string must hold one for a
// reading to name it in hitStrings: for the plain reading '@', and, for
// '%', a '4' (hitStrings wants "%40" in the run's bytes) or 0xFE (the
// start of a UTF-16 string, where hitStrings takes any '%'), since a '%'
// alone is common (it is 'l' in LibreOffice's subset fonts); for a CMap,
// the first byte of each code that reads as '@' or '%'.
func hitBytes(t *[256]bool, plain bool, cms []*cmap) {
	*t = [256]bool{}
	if plain {
		t['@'], t['4'], t[0xFE] = true, true, true
	}
	for _, cm := range cms {
		for c, at := range cm.atFirst {
			t[c] = t[c] || at
		}
	}
}

// mayHit reports whether PDF syntax b may hold a string that forRuns
// reads with a byte of t in it. It says no only if b has no literal
// string and no comment (no '(' or '%' at all), and every hexadecimal
// string of b is digit pairs (forRuns' fast form) none of which is in t.
// Without '(' and '%', forRuns meets every '<' outside strings except
// the second of "<<" (a name ends before '<', isDelim; a hexadecimal
// string that holds a '<' is no pairs alone), so mayHit walks the '<'s
// as forRuns does.
func mayHit(b []byte, t *[256]bool) bool {
	if bytes.IndexByte(b, '(') >= 0 || bytes.IndexByte(b, '%') >= 0 {
		return true // a literal string or a comment: not read here
	}
	for i := 0; ; {
		// The next '<': in a line of glyphs one or two bytes on ("<01>2<02>-7<03>").
		switch {
		case i < len(b) && b[i] == '<':
		case i+1 < len(b) && b[i+1] == '<':
			i++
		case i+2 < len(b) && b[i+2] == '<':
			i += 2
		default:
			k := bytes.IndexByte(b[min(i, len(b)):], '<')
			if k < 0 {
				return false
			}
			i += k
		}
		if i+3 >= len(b) {
			return true // too short for "<hh>": not read here
		}
		if b[i+3] == '>' { // "<hh>", a glyph
			if hi, lo := hexValues[b[i+1]], hexValues[b[i+2]]; hi|lo <= 0x0F {
				if t[hi<<4|lo] {
					return true
				}
				i += 4
				continue
			}
		}
		if b[i+1] == '<' {
			i += 2 // a dictionary opens
			continue
		}
		j := i + 1
		for ; j+1 < len(b); j += 2 {
			hi, lo := hexValues[b[j]], hexValues[b[j+1]]
			if hi|lo > 0x0F {
				break
			}
			if t[hi<<4|lo] {
				return true
			}
		}
		if j >= len(b) || b[j] != '>' {
			return true // not digit pairs alone: appendHex's reading
		}
		i = j + 1
	}
}
