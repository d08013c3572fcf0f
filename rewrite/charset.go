package rewrite

import (
	"bytes"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// This file decides how a text part's bytes become the UTF-8 text that is
// scanned (issue 17, item 4): by its charset label where the label is
// known, by its byte order mark or NUL pattern for UTF-16 and UTF-32, and
// as ASCII-compatible bytes where the label is unknown but the bytes show
// it. Refusing what we can read bounces real customer mail.

// charsetOf returns the encoding of content labelled label; nil means the
// bytes are scanned as they are (UTF-8, ASCII, or ASCII-compatible bytes
// under an unknown label). errUndecodable: the label is unknown and the
// bytes are not ASCII-compatible.
func charsetOf(label string, content []byte) (encoding.Encoding, error) {
	name := cleanLabel(label)
	if unicodeFamily(name) != 0 || bytes.IndexByte(content, 0) >= 0 || hasUnicodeBOM(content) {
		if enc, ok := sniffUnicode(name, content); ok {
			return enc, nil
		}
	}
	switch name {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return nil, nil
	case "utf-7", "utf7", "unicode-1-1-utf-7", "csunicode11utf7", "x-utf-7":
		return utf7Encoding{}, nil
	}
	if enc, err := lookupCharset(name); err == nil {
		return enc, nil
	}
	if asciiCompatible(content) {
		return nil, nil
	}
	return nil, errUndecodable
}

// cleanLabel lower-cases a charset label and undoes the damage seen in the
// wild: quotes and spaces left in, and a label that repeats its own
// parameter name (charset="charset=us-ascii").
func cleanLabel(label string) string {
	name := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"' `))
	for strings.HasPrefix(name, "charset=") {
		name = strings.Trim(strings.TrimPrefix(name, "charset="), `"' `)
	}
	return name
}

// asciiCompatible: bytes that read as ASCII where they are ASCII. A NUL
// never appears in such text (RFC 2045 section 2.7 forbids it in 7bit and
// 8bit data), and it is how UTF-16 and UTF-32 show themselves.
func asciiCompatible(content []byte) bool {
	return bytes.IndexByte(content, 0) < 0 && !hasUnicodeBOM(content)
}

func hasUnicodeBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xFE, 0xFF}) || bytes.HasPrefix(b, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF})
}

// sniffUnicode recognises UTF-16 and UTF-32 content: by its byte order
// mark, else by its label's byte order (RFC 2781 section 4.3: big-endian
// when nothing says otherwise), else by where its NULs fall (ASCII text
// in UTF-16LE has a NUL in every odd byte). Content that is neither
// labelled so nor holds a BOM or a NUL is not sniffed (charsetOf): the
// common case costs one byte search.
func sniffUnicode(name string, content []byte) (encoding.Encoding, bool) {
	family := unicodeFamily(name)
	switch {
	case bytes.HasPrefix(content, []byte{0xFF, 0xFE, 0, 0}) && family != 16:
		return utf32.UTF32(utf32.LittleEndian, utf32.UseBOM), true
	case bytes.HasPrefix(content, []byte{0, 0, 0xFE, 0xFF}):
		return utf32.UTF32(utf32.BigEndian, utf32.UseBOM), true
	case bytes.HasPrefix(content, []byte{0xFF, 0xFE}) && family != 32:
		return unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), true
	case bytes.HasPrefix(content, []byte{0xFE, 0xFF}) && family != 32:
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM), true
	}
	little, width := nulPattern(content)
	if family != 0 && width != 0 && width != family {
		width = 0 // the NULs contradict the label: trust the label
	}
	if width == 0 {
		width, little = family, strings.HasSuffix(name, "le")
	}
	switch width {
	case 16:
		if little {
			return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true
		}
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), true
	case 32:
		if little {
			return utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM), true
		}
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), true
	}
	return nil, false
}

// unicodeFamily is 16 or 32 for a UTF-16 or UTF-32 label, else 0.
func unicodeFamily(name string) int {
	switch name {
	case "utf-16", "utf-16le", "utf-16be", "utf16", "ucs-2", "iso-10646-ucs-2", "csunicode", "unicode":
		return 16
	case "utf-32", "utf-32le", "utf-32be", "utf32", "ucs-4", "iso-10646-ucs-4", "csucs4":
		return 32
	}
	return 0
}

// unicodeSniffBytes is how much of a part the NUL pattern is read from.
const unicodeSniffBytes = 4096

// nulPattern tells UTF-16 and UTF-32 without a byte order mark from where
// their NULs fall: text with enough ASCII in it has the high bytes of its
// code units zero. width is 16 or 32, or 0 when the pattern is not clear.
// A code point's top byte in UTF-32 is always zero, so that position must
// be zero throughout; the others must be zero in most units.
func nulPattern(content []byte) (little bool, width int) {
	n := min(len(content), unicodeSniffBytes) &^ 3
	if n < 4 {
		return false, 0 // too short to tell, and too short to hold an address
	}
	var zeros [4]int
	for i, c := range content[:n] {
		if c == 0 {
			zeros[i&3]++
		}
	}
	units := n / 4
	mostly := func(z int) bool { return z*10 >= units*9 }
	rare := func(z int) bool { return z*10 <= units }
	switch {
	case len(content)%4 == 0 && zeros[3] == units && mostly(zeros[2]) && rare(zeros[0]):
		return true, 32
	case len(content)%4 == 0 && zeros[0] == units && mostly(zeros[1]) && rare(zeros[3]):
		return false, 32
	}
	if len(content)%2 != 0 {
		return false, 0
	}
	even, odd := zeros[0]+zeros[2], zeros[1]+zeros[3]
	half := n / 2
	switch {
	case odd*10 >= half*4 && even*20 <= half:
		return true, 16
	case even*10 >= half*4 && odd*20 <= half:
		return false, 16
	}
	return false, 0
}
