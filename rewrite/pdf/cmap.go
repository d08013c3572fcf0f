package pdf

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// A font that maps its own codes to glyphs (a subset TrueType font, a CID
// font: what LibreOffice and word processors embed) shows text whose
// string bytes are no characters at all: "jane@…" may be <0E0F0510…>.
// Its ToUnicode CMap (PDF 32000-1 section 9.10.3) says which text each
// code stands for, and is the only way to read it.

// cmap is one ToUnicode CMap: codes of width bytes to UTF-8 text.
type cmap struct {
	width int
	m     map[string][]byte
	room  int // entries it may still take
	// mayShowAt: some code reads as text with '@' or '%' in it. Text read
	// with a CMap that has neither holds no address for the scanner ('@',
	// or "%40" as in a mailto: URI), and the reading is skipped.
	mayShowAt bool
	// byCode is m for decode: codes of width bytes, keyed by value (a
	// string-keyed lookup per code was a third of a CMap file's scan);
	// byByte the same for one-byte codes, set ones marked in hasByte.
	byCode  map[uint32][]byte
	byByte  [256][]byte
	hasByte [256]bool
	// at marks the codes that read as text with '@' or '%', cut those
	// that read as text with a word break (runs.go): a string is decoded
	// only near such codes.
	at, cut codeSet
	// atFirst marks the first bytes of at's codes: a stream none of whose
	// strings holds one is not read with this CMap (skip.go).
	atFirst [256]bool
}

// codeSet marks codes of one width: one-byte codes in a table, two-byte
// ones in a bit set, longer ones (rare) in a map.
type codeSet struct {
	byByte [256]bool
	bits   []uint64
	codes  map[uint32]bool
	// few lists the codes while there are at most maxFew of them: a run's
	// strings are then searched for each (bytes.Index) instead of read
	// code by code. A font has one code for '@' and one for '%'.
	few  [][]byte
	many bool
}

const maxFew = 4

func (cs *codeSet) add(code []byte) {
	if !cs.many && len(cs.few) < maxFew {
		cs.few = append(cs.few, code)
	} else {
		cs.few, cs.many = nil, true
	}
	switch v := codeValue(code); len(code) {
	case 1:
		cs.byByte[v] = true
	case 2:
		if cs.bits == nil {
			cs.bits = make([]uint64, 1<<16/64)
		}
		cs.bits[v>>6] |= 1 << (v & 63)
	default:
		if cs.codes == nil {
			cs.codes = map[uint32]bool{}
		}
		cs.codes[v] = true
	}
}

// anyCode reports whether str, read code by code as decode reads it,
// holds a code of cs.
func (cm *cmap) anyCode(str []byte, cs *codeSet) bool {
	switch cm.width {
	case 1:
		for _, c := range str {
			if cs.byByte[c] {
				return true
			}
		}
	case 2:
		if cs.bits == nil {
			return false
		}
		for i := 0; i+2 <= len(str); i += 2 {
			if v := uint32(str[i])<<8 | uint32(str[i+1]); cs.bits[v>>6]&(1<<(v&63)) != 0 {
				return true
			}
		}
	default:
		for i := 0; cs.codes != nil && i+cm.width <= len(str); i += cm.width {
			if cs.codes[codeValue(str[i:i+cm.width])] {
				return true
			}
		}
	}
	return false
}

// full reports whether the CMap had more entries than it had room for.
func (cm *cmap) full() bool { return cm.room <= 0 }

// maxCMapEntries bounds the entries of all the CMaps of a file (a bfrange
// can name 65536 codes): a real font names a few hundred.
const maxCMapEntries = 1 << 17

// parseCMap reads a ToUnicode CMap's codespace and its bfchar and bfrange
// mappings, at most room of them; nil if b holds none.
func parseCMap(b []byte, room int) *cmap {
	cm := &cmap{width: 1, m: map[string][]byte{}, room: room}
	if i := bytes.Index(b, []byte("begincodespacerange")); i >= 0 {
		if t := cmapTokens(b[i:], 1); len(t) == 1 && len(t[0]) > 0 {
			cm.width = min(len(t[0]), 4)
		}
	}
	for _, blk := range cmapBlocks(b, "beginbfchar", "endbfchar") {
		t := cmapTokens(blk, -1)
		for k := 0; k+1 < len(t); k += 2 {
			cm.add(t[k], t[k+1])
		}
	}
	for _, blk := range cmapBlocks(b, "beginbfrange", "endbfrange") {
		cm.ranges(blk)
	}
	if len(cm.m) == 0 {
		return nil
	}
	cm.index()
	return cm
}

// index fills byCode or byByte from m. A code of another width than the
// codespace's is never read by decode, and is left out.
func (cm *cmap) index() {
	if cm.width > 1 {
		cm.byCode = make(map[uint32][]byte, len(cm.m))
	}
	for code, text := range cm.m {
		if len(code) != cm.width {
			continue
		}
		if cm.width == 1 {
			cm.byByte[code[0]], cm.hasByte[code[0]] = text, true
		} else {
			cm.byCode[codeValue([]byte(code))] = text
		}
		if bytes.IndexByte(text, '@') >= 0 || bytes.IndexByte(text, '%') >= 0 {
			cm.at.add([]byte(code))
			cm.atFirst[code[0]] = true
		}
		if indexBreak(text) >= 0 {
			cm.cut.add([]byte(code))
		}
	}
}

func (cm *cmap) add(code, dst []byte) {
	if cm.room > 0 {
		cm.room--
		t := utf16Text(dst)
		cm.m[string(code)] = t
		cm.mayShowAt = cm.mayShowAt || bytes.IndexByte(t, '@') >= 0 || bytes.IndexByte(t, '%') >= 0
	}
}

// ranges reads bfrange lines: <lo> <hi> <dst>, the last unit of dst
// counting up, or <lo> <hi> [<dst> …], one per code.
func (cm *cmap) ranges(blk []byte) {
	for len(blk) > 0 && cm.room > 0 {
		t, rest, arr := cmapRange(blk)
		if t == nil {
			return
		}
		blk = rest
		lo, hi := codeValue(t[0]), codeValue(t[1])
		if hi < lo || hi-lo > 0xFFFF || len(t[0]) != len(t[1]) {
			continue
		}
		for c := lo; c <= hi && cm.room > 0; c++ {
			code := codeBytes(c, len(t[0]))
			switch {
			case arr != nil && int(c-lo) < len(arr):
				cm.add(code, arr[c-lo])
			case arr == nil && len(t[2]) >= 2:
				dst := append([]byte(nil), t[2]...)
				v := int(dst[len(dst)-2])<<8 | int(dst[len(dst)-1]) + int(c-lo)
				dst[len(dst)-2], dst[len(dst)-1] = byte(v>>8), byte(v)
				cm.add(code, dst)
			}
		}
	}
}

// cmapRange reads one bfrange entry from blk.
func cmapRange(blk []byte) (t [][]byte, rest []byte, arr [][]byte) {
	var toks [][]byte
	i := 0
	for len(toks) < 3 && i < len(blk) {
		switch blk[i] {
		case '<':
			j := bytes.IndexByte(blk[i:], '>')
			if j < 0 {
				return nil, nil, nil
			}
			h, _ := hexDecode(blk[i+1 : i+j])
			toks = append(toks, h)
			i += j + 1
		case '[':
			j := bytes.IndexByte(blk[i:], ']')
			if j < 0 {
				return nil, nil, nil
			}
			arr = cmapTokens(blk[i+1:i+j], -1)
			toks = append(toks, nil)
			i += j + 1
		default:
			i++
		}
	}
	if len(toks) < 3 {
		return nil, nil, nil
	}
	return toks, blk[i:], arr
}

// cmapBlocks returns the bodies between begin and end keywords.
func cmapBlocks(b []byte, begin, end string) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte(begin))
		if i < 0 {
			return out
		}
		b = b[i+len(begin):]
		j := bytes.Index(b, []byte(end))
		if j < 0 {
			return append(out, b)
		}
		out = append(out, b[:j])
		b = b[j+len(end):]
	}
}

// cmapTokens returns the first n hex strings of b, decoded (all if n < 0).
func cmapTokens(b []byte, n int) [][]byte {
	var out [][]byte
	for n < 0 || len(out) < n {
		i := bytes.IndexByte(b, '<')
		if i < 0 {
			return out
		}
		j := bytes.IndexByte(b[i:], '>')
		if j < 0 {
			return out
		}
		h, _ := hexDecode(b[i+1 : i+j])
		out = append(out, h)
		b = b[i+j+1:]
	}
	return out
}

func codeValue(b []byte) uint32 {
	var v uint32
	for _, c := range b[:min(len(b), 4)] {
		v = v<<8 | uint32(c)
	}
	return v
}

func codeBytes(v uint32, n int) []byte {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i], v = byte(v), v>>8
	}
	return b
}

// utf16Text decodes a CMap destination, UTF-16BE without a byte order
// mark, to UTF-8.
func utf16Text(b []byte) []byte {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
	}
	out := make([]byte, 0, len(units))
	for _, r := range utf16.Decode(units) {
		out = utf8.AppendRune(out, r)
	}
	return out
}

// decode appends the text of raw, read code by code; a code the CMap does
// not name reads as U+FFFD, which no address holds.
func (cm *cmap) decode(dst, raw []byte) []byte {
	if cm.width == 1 {
		for _, c := range raw {
			if cm.hasByte[c] {
				dst = append(dst, cm.byByte[c]...)
			} else {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
		}
		return dst
	}
	for i := 0; i+cm.width <= len(raw); i += cm.width {
		if t, ok := cm.byCode[codeValue(raw[i:i+cm.width])]; ok {
			dst = append(dst, t...)
		} else {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
	}
	return dst
}
