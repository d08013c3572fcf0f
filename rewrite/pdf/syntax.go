package pdf

import (
	"bytes"
	"encoding/ascii85"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	kpflate "github.com/klauspost/compress/flate"
)

// nextStream finds the next stream from data[i:] on (PDF 32000-1 section
// 7.3.8): kw is where its "stream" keyword starts, [ds, de) its data,
// next the offset after "endstream", dict the dictionary before it (from
// the "obj" that opens the object). kw < 0: no more streams. The data
// ends at "endstream", whatever /Length says: a damaged length must not
// hide bytes.
func nextStream(data []byte, i int) (kw, ds, de, next int, dict []byte) {
	from := i
	for i < len(data) {
		k := bytes.Index(data[i:], []byte("stream"))
		if k < 0 {
			return -1, 0, 0, 0, nil
		}
		k += i
		i = k + len("stream")
		if k >= 3 && string(data[k-3:k]) == "end" {
			continue
		}
		ds = i
		switch {
		case bytes.HasPrefix(data[ds:], []byte("\r\n")):
			ds += 2
		case ds < len(data) && (data[ds] == '\n' || data[ds] == '\r'):
			ds++
		default:
			continue // "stream" in some other word or string
		}
		e := bytes.Index(data[ds:], []byte("endstream"))
		if e < 0 {
			de, next = len(data), len(data)
		} else {
			de, next = ds+e, ds+e+len("endstream")
		}
		if de > ds && data[de-1] == '\n' { // the end of line before "endstream"
			de--
		}
		if de > ds && data[de-1] == '\r' {
			de--
		}
		start := bytes.LastIndex(data[from:k], []byte("obj"))
		if start < 0 || k-from-start > 64<<10 {
			start = max(0, k-from-4096)
		}
		start += from
		return k, ds, de, next, data[start:k]
	}
	return -1, 0, 0, 0, nil
}

// filters lists the names of a stream dictionary's /Filter, in order.
func filters(dict []byte) []string {
	i := bytes.Index(dict, []byte("/Filter"))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(dict[i+len("/Filter"):], " \t\r\n")
	end := len(rest)
	if len(rest) > 0 && rest[0] == '[' {
		if j := bytes.IndexByte(rest, ']'); j >= 0 {
			end = j
		}
		rest = rest[1:end]
	} else if len(rest) > 0 && rest[0] == '/' {
		j := 1
		for j < len(rest) && !isDelim(rest[j]) {
			j++
		}
		rest = rest[:j]
	} else {
		return []string{"?"} // an indirect reference or worse: not read
	}
	var out []string
	for _, f := range bytes.Fields(bytes.ReplaceAll(rest, []byte("/"), []byte(" /"))) {
		out = append(out, string(bytes.TrimPrefix(f, []byte("/"))))
	}
	return out
}

// isDelim reports whether c ends a name: white space or a delimiter (PDF
// 32000-1 section 7.2.2). A table: it runs once per byte of every name.
func isDelim(c byte) bool { return delims[c] }

var delims = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n\f\x00()<>[]{}/%") {
		t[c] = true
	}
	return t
}()

// decode undoes a stream's filters, within the budget. Image filters
// leave nothing to scan; a filter it does not know makes the file
// unreadable.
func (s *scanner) decode(dict, raw []byte) ([]byte, error) {
	b := raw
	for _, f := range filters(dict) {
		var err error
		switch f {
		case "FlateDecode", "Fl":
			b, err = s.inflate(b)
		case "ASCIIHexDecode", "AHx":
			b, err = hexDecode(b)
		case "ASCII85Decode", "A85":
			b, err = a85Decode(b)
		case "LZWDecode", "LZW":
			b, err = s.lzwDecode(dict, b)
		case "RunLengthDecode", "RL":
			b, err = s.runLengthDecode(b)
		case "DCTDecode", "DCT", "JPXDecode", "CCITTFaxDecode", "CCF", "JBIG2Decode":
			return nil, nil // an image
		default:
			return nil, fmt.Errorf("%w: stream filter %.20q", ErrUnreadable, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// inflate decodes zlib data (RFC 1950) within the budget (bounded). The
// header is checked as compress/zlib checks it (section 2.2: method 8, the
// check bits, no preset dictionary, which PDF never uses); the deflate
// data (RFC 1951) is inflated by klauspost/compress, about twice as fast
// as compress/flate, with one decompressor reused for every stream of the
// file. The Adler-32 trailer is not verified: a damaged stream keeps what
// was decoded either way (bounded), and the checksum was a tenth of the
// scan's time.
func (s *scanner) inflate(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0]&0x0f != 8 || (uint(raw[0])<<8|uint(raw[1]))%31 != 0 || raw[1]&0x20 != 0 {
		return nil, fmt.Errorf("%w: not a zlib stream", ErrUnreadable)
	}
	s.rawReader.Reset(raw[2:])
	if s.inflater == nil {
		s.inflater = kpflate.NewReader(&s.rawReader)
	} else if err := s.inflater.(kpflate.Resetter).Reset(&s.rawReader, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return s.bounded(s.inflater, raw)
}

func hexDecode(b []byte) ([]byte, error) {
	return appendHex(nil, b), nil
}

// appendHex appends the bytes of ASCIIHex data b (PDF 32000-1 section
// 7.4.2): up to '>', white space and other non-hex bytes ignored, an odd
// last digit read as followed by 0.
func appendHex(dst, b []byte) []byte {
	// Pairs of digits, the usual form, written into room made at once:
	// appending byte by byte was a third of reading a CMap file's strings.
	dst = slices.Grow(dst, len(b)/2)
	out := dst[len(dst) : len(dst)+len(b)/2]
	n, i := 0, 0
	for ; n < len(out); n, i = n+1, i+2 {
		hi, lo := hexValues[b[i]], hexValues[b[i+1]]
		if hi|lo > 0x0F {
			break // white space, '>' or junk: read the rest digit by digit
		}
		out[n] = hi<<4 | lo
	}
	dst = dst[:len(dst)+n]
	hi, odd := byte(0), false
	for _, c := range b[i:] {
		if c == '>' {
			break
		}
		v, ok := hexValue(c)
		if !ok {
			continue
		}
		if odd {
			dst = append(dst, hi<<4|v)
		} else {
			hi = v
		}
		odd = !odd
	}
	if odd {
		dst = append(dst, hi<<4)
	}
	return dst
}

func hexValue(c byte) (byte, bool) {
	v := hexValues[c]
	return v, v != 0xFF
}

// hexValues: each byte's value as a hex digit, 0xFF if it is none.
var hexValues = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xFF
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = c-'a'+10, c-'a'+10
	}
	return t
}()

func a85Decode(b []byte) ([]byte, error) {
	b = bytes.TrimPrefix(bytes.TrimSpace(b), []byte("<~"))
	if i := bytes.Index(b, []byte("~>")); i >= 0 {
		b = b[:i]
	}
	out := make([]byte, 4*len(b)/5+4)
	n, _, err := ascii85.Decode(out, b, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return out[:n], nil
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// stringsSpecial: the bytes forRuns stops at outside strings.
var stringsSpecial = [256]bool{'%': true, '(': true, '/': true, '<': true, '>': true}

// plainString decodes a string as a string of the file is read: a
// UTF-16BE text string to UTF-8 (PDF 32000-1 section 7.9.2.2), any other
// as its bytes (PDFDocEncoding, or a simple font's encoding: ASCII is
// ASCII in both).
func plainString(dst, raw []byte) []byte { return append(dst, textString(raw)...) }

func nameEnd(b []byte, i int) int {
	for i++; i < len(b) && !isDelim(b[i]); i++ {
	}
	return i
}

// selectsFont reports whether b, after a name, reads " <size> Tf": a font
// change within a line of text, which does not part its words.
func selectsFont(b []byte) bool {
	i := skipSpace(b, 0)
	j := i
	for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == '-') {
		j++
	}
	if j == i {
		return false
	}
	j = skipSpace(b, j)
	return bytes.HasPrefix(b[j:], []byte("Tf"))
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// mayHoldAt reports whether a string of b may decode to text with an '@':
// one is there as it is, as an octal escape, or in a hex string. Most
// content streams have none, and skip the string parse.
func mayHoldAt(b []byte) bool {
	if bytes.IndexByte(b, '@') >= 0 || bytes.Contains(b, []byte(`\100`)) {
		return true
	}
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return false
		}
		i += j
		if i+1 < len(b) && b[i+1] != '<' && (b[i+1] != '>' && (isHex(b[i+1]) || b[i+1] == ' ')) {
			return true
		}
		if i+1 < len(b) && b[i+1] == '<' {
			i++
		}
	}
}

// appendLiteral appends the bytes of the literal string starting at b[i]
// ('('), escapes undone and nested parentheses kept (PDF 32000-1 section
// 7.3.4.2), and returns the offset after it.
func appendLiteral(out, b []byte, i int) ([]byte, int) {
	depth := 0
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\\' && i+1 < len(b):
			i++
			switch e := b[i]; e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b', 'f':
			case '\r':
				if i+1 < len(b) && b[i+1] == '\n' {
					i++
				}
			case '\n':
			default:
				if '0' <= e && e <= '7' {
					v, k := 0, 0
					for ; k < 3 && i+k < len(b) && '0' <= b[i+k] && b[i+k] <= '7'; k++ {
						v = v*8 + int(b[i+k]-'0')
					}
					out = append(out, byte(v))
					i += k - 1
				} else {
					out = append(out, e)
				}
			}
		case c == '(':
			depth++
			out = append(out, c)
		case c == ')':
			if depth == 0 {
				return out, i + 1
			}
			depth--
			out = append(out, c)
		default:
			// copy the run up to the next byte that needs a look at once
			j := i + 1
			for j < len(b) && !literalSpecial[b[j]] {
				j++
			}
			out = append(out, b[i:j]...)
			i = j - 1
		}
	}
	return out, i
}

// literalSpecial: the bytes a literal string's parse stops at.
var literalSpecial = [256]bool{'\\': true, '(': true, ')': true}

// textString decodes a text string in UTF-16BE (its byte order mark says
// so, PDF 32000-1 section 7.9.2.2) to UTF-8; other strings stay bytes.
func textString(b []byte) []byte {
	if len(b) < 2 || b[0] != 0xFE || b[1] != 0xFF {
		return b
	}
	units := make([]uint16, 0, len(b)/2)
	for i := 2; i+1 < len(b); i += 2 {
		units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
	}
	out := make([]byte, 0, len(units))
	for _, r := range utf16.Decode(units) {
		out = utf8.AppendRune(out, r)
	}
	return out
}
