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
//
// Where a stream has a hit, the strings before the last one ahead of it
// that every reading reads as a word break hold no hit and lie in no word
// around one (readRun's window stops at that string), so the stream is
// tokenized from that string on: an address on a page's last line costs
// the tokenizing of a line or two, not of the page.
//
// FuzzSkip checks both against tokenizing the whole stream, FuzzFile the
// file's scan with and without them, and FuzzStringsPlain and
// FuzzStringsCMap readStrings against reading every string.

// skipTable classes the bytes of strings for mayHit.
type skipTable [256]uint8

const (
	hitByte uint8 = 1 << iota // some reading may name a string holding it in hitStrings
	cutByte                   // a string holding it is a word break for every reading (cutIn)
)

// hitBytes fills t for reading strings as they are if plain and with each
// CMap of cms. Hits: for the plain reading '@', and, for '%', a '4'
// (hitStrings wants "%40" in the run's bytes) or 0xFE (the start of a
// UTF-16 string, where hitStrings takes any '%'), since a '%' alone is
// common (it is 'l' in LibreOffice's subset fonts); for a CMap, the first
// byte of each code that reads as '@' or '%'. Cuts: a byte that is a
// break for the plain reading (breaks; a UTF-16 string would be a hit
// first) and a one-byte code of each CMap that reads with a break; none
// if a CMap's codes are wider.
func hitBytes(t *skipTable, plain bool, cms []*cmap) {
	for c := range t {
		t[c] = cutByte
		if plain {
			if !breaks[c] {
				t[c] = 0
			}
			if c == '@' || c == '4' || c == 0xFE {
				t[c] |= hitByte
			}
		}
		for _, cm := range cms {
			if cm.width != 1 || !cm.cut.byByte[c] {
				t[c] &^= cutByte
			}
			if cm.atFirst[c] {
				t[c] |= hitByte
			}
		}
	}
}

// mayHit reports whether PDF syntax b may hold a string that forRuns
// reads with a hit byte of t in it, and if so, from where b must be
// tokenized: the '<' of the last string before the first hit that holds
// a cut byte, or 0. It says no only if b has no literal string and no
// comment (no '(' or '%' at all), and every hexadecimal string of b is
// digit pairs (forRuns' fast form) none of which is a hit. Without '('
// and '%', forRuns meets every '<' outside strings except the second of
// "<<" (a name ends before '<', isDelim; a hexadecimal string that holds
// a '<' is no pairs alone), so mayHit walks the '<'s as forRuns does.
func mayHit(b []byte, t *skipTable) (from int, hit bool) {
	if bytes.IndexByte(b, '(') >= 0 || bytes.IndexByte(b, '%') >= 0 {
		return 0, true // a literal string or a comment: not read here
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
				return 0, false
			}
			i += k
		}
		if i+3 >= len(b) {
			return from, true // too short for "<hh>": not read here
		}
		if b[i+3] == '>' { // "<hh>", a glyph
			if hi, lo := hexValues[b[i+1]], hexValues[b[i+2]]; hi|lo <= 0x0F {
				c := t[hi<<4|lo]
				if c&hitByte != 0 {
					return from, true
				}
				if c&cutByte != 0 {
					from = i
				}
				i += 4
				continue
			}
		}
		if b[i+1] == '<' {
			i += 2 // a dictionary opens
			continue
		}
		j, classes := i+1, uint8(0)
		for ; j+1 < len(b); j += 2 {
			hi, lo := hexValues[b[j]], hexValues[b[j+1]]
			if hi|lo > 0x0F {
				break
			}
			c := t[hi<<4|lo]
			if c&hitByte != 0 {
				return from, true
			}
			classes |= c
		}
		if j >= len(b) || b[j] != '>' {
			return from, true // not digit pairs alone: appendHex's reading
		}
		if classes&cutByte != 0 {
			from = i
		}
		i = j + 1
	}
}
