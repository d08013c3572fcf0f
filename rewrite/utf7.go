package rewrite

import (
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// utf7Encoding is UTF-7 (RFC 2152), which golang.org/x/text does not
// have; the Go UTF-7 packages there are of IMAP's modified UTF-7 (RFC 3501
// section 5.1.3: '&' instead of '+', ',' instead of '/'), another
// encoding. Mail clients still send it, and its '@' is often encoded
// ("jane+AEA-example.com"), so an address is only seen decoded.
//
// Decoding is lenient, as for the other charsets: a broken shift sequence
// becomes U+FFFD, never an error. Encoding writes RFC 2152's Set D and
// Set O characters directly (Rule 3) and closes every base64 run with '-'.
type utf7Encoding struct{}

func (utf7Encoding) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: &utf7Decoder{}}
}

func (utf7Encoding) NewEncoder() *encoding.Encoder {
	return &encoding.Encoder{Transformer: &utf7Encoder{}}
}

func (utf7Encoding) String() string { return "UTF-7" }

const utf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// utf7Value is the base64 value of c, or -1 (RFC 2152 Rule 2: modified
// base64 without padding).
func utf7Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// utf7Direct: the characters written as themselves, RFC 2152 Set D, Set O
// and the white space of Rule 3. '+', '\' and '~' are not among them.
func utf7Direct(r rune) bool {
	switch {
	case 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z', '0' <= r && r <= '9':
		return true
	case r >= 0x80:
		return false
	}
	switch r {
	case '\'', '(', ')', ',', '-', '.', '/', ':', '?', ' ', '\t', '\r', '\n',
		'!', '"', '#', '$', '%', '&', '*', ';', '<', '=', '>', '@', '[', ']', '^', '_', '`', '{', '|', '}':
		return true
	}
	return false
}

// utf7Decoder is a transform.Transformer from UTF-7 to UTF-8.
type utf7Decoder struct {
	shifted bool   // inside a "+…" base64 run
	bits    uint32 // base64 bits not yet part of a UTF-16 unit
	nbits   uint
	high    rune // a high surrogate waiting for its low half, or 0
}

func (d *utf7Decoder) Reset() { *d = utf7Decoder{} }

// maxUTF7Out is the most one input byte makes: a lone surrogate's U+FFFD
// and a rune.
const maxUTF7Out = 2 * utf8.UTFMax

func (d *utf7Decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if len(dst)-nDst < maxUTF7Out {
			return nDst, nSrc, transform.ErrShortDst
		}
		c := src[nSrc]
		if !d.shifted {
			if c != '+' {
				nDst += d.direct(dst[nDst:], c)
				nSrc++
				continue
			}
			if nSrc+1 == len(src) && !atEOF {
				return nDst, nSrc, transform.ErrShortSrc
			}
			if nSrc+1 < len(src) && src[nSrc+1] == '-' { // "+-" is '+' (Rule 2)
				dst[nDst] = '+'
				nDst, nSrc = nDst+1, nSrc+2
				continue
			}
			d.shifted, d.bits, d.nbits = true, 0, 0
			nSrc++
			continue
		}
		v := utf7Value(c)
		if v < 0 { // the run ends; a '-' ending it is absorbed (Rule 2)
			nDst += d.unshift(dst[nDst:])
			if c == '-' {
				nSrc++
			}
			continue
		}
		d.bits, d.nbits = d.bits<<6|uint32(v), d.nbits+6
		nSrc++
		if d.nbits >= 16 {
			d.nbits -= 16
			unit := rune(d.bits >> d.nbits & 0xFFFF)
			d.bits &= 1<<d.nbits - 1
			nDst += d.unit(dst[nDst:], unit)
		}
	}
	if atEOF && d.shifted {
		if len(dst)-nDst < maxUTF7Out {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += d.unshift(dst[nDst:])
	}
	return nDst, nSrc, nil
}

// direct writes a character outside a base64 run; 8-bit bytes are not
// UTF-7 and become U+FFFD.
func (d *utf7Decoder) direct(dst []byte, c byte) int {
	if c >= 0x80 {
		return utf8.EncodeRune(dst, utf8.RuneError)
	}
	dst[0] = c
	return 1
}

// unshift ends a base64 run; a high surrogate left open becomes U+FFFD.
func (d *utf7Decoder) unshift(dst []byte) int {
	d.shifted = false
	if d.high != 0 {
		d.high = 0
		return utf8.EncodeRune(dst, utf8.RuneError)
	}
	return 0
}

// unit writes one UTF-16 code unit, pairing surrogates.
func (d *utf7Decoder) unit(dst []byte, u rune) int {
	n := 0
	if d.high != 0 {
		h := d.high
		d.high = 0
		if utf16.IsSurrogate(u) && u >= 0xDC00 {
			return utf8.EncodeRune(dst, utf16.DecodeRune(h, u))
		}
		n = utf8.EncodeRune(dst, utf8.RuneError)
	}
	switch {
	case 0xD800 <= u && u < 0xDC00:
		d.high = u
		return n
	case utf16.IsSurrogate(u):
		u = utf8.RuneError
	}
	return n + utf8.EncodeRune(dst[n:], u)
}

// utf7Encoder is a transform.Transformer from UTF-8 to UTF-7.
type utf7Encoder struct {
	shifted bool
	bits    uint32
	nbits   uint
}

func (e *utf7Encoder) Reset() { *e = utf7Encoder{} }

// maxUTF7In is the most one rune makes: a run's last character and '-',
// '+', and two UTF-16 units (32 bits: 6 base64 characters).
const maxUTF7In = 10

func (e *utf7Encoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if len(dst)-nDst < maxUTF7In {
			return nDst, nSrc, transform.ErrShortDst
		}
		if !atEOF && !utf8.FullRune(src[nSrc:]) {
			return nDst, nSrc, transform.ErrShortSrc
		}
		r, size := utf8.DecodeRune(src[nSrc:])
		nSrc += size
		switch {
		case utf7Direct(r):
			nDst += e.unshift(dst[nDst:])
			dst[nDst] = byte(r)
			nDst++
		case r == '+' && !e.shifted:
			nDst += copy(dst[nDst:], "+-")
		default:
			if !e.shifted {
				dst[nDst] = '+'
				nDst++
				e.shifted = true
			}
			units, n := [2]rune{r}, 1
			if r >= 0x10000 {
				units[0], units[1] = utf16.EncodeRune(r)
				n = 2
			}
			for _, u := range units[:n] {
				e.bits, e.nbits = e.bits<<16|uint32(u), e.nbits+16
				for e.nbits >= 6 {
					e.nbits -= 6
					dst[nDst] = utf7Alphabet[e.bits>>e.nbits&63]
					nDst++
				}
				e.bits &= 1<<e.nbits - 1
			}
		}
	}
	if atEOF {
		if len(dst)-nDst < maxUTF7In {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += e.unshift(dst[nDst:])
	}
	return nDst, nSrc, nil
}

// unshift ends a base64 run: the last bits padded with zeros to a whole
// character, then '-', which a decoder absorbs (RFC 2152 Rule 2).
func (e *utf7Encoder) unshift(dst []byte) int {
	if !e.shifted {
		return 0
	}
	n := 0
	if e.nbits > 0 {
		dst[n] = utf7Alphabet[e.bits<<(6-e.nbits)&63]
		n++
	}
	dst[n] = '-'
	e.shifted, e.bits, e.nbits = false, 0, 0
	return n + 1
}
