package pdf

import "bytes"

// preread decodes the ToUnicode CMaps the file's fonts name ("/ToUnicode
// 8 0 R", PDF 32000-1 section 9.10.3) before the file's pass, so that the
// content streams before them are decoded and read once: LibreOffice and
// TeX write the fonts, and their CMaps, after the pages. Font
// dictionaries may lie in object streams (section 7.5.7), which are
// decoded for that first. A stream that fails to decode here is left to
// the file's pass, which says why in its turn; a CMap no font names is
// read where it comes (file), and the content before it decoded again.
//
// The decoded bytes count against the budget here, and the file's pass
// decodes these streams again without counting them (decodeAgain).
func (s *scanner) preread(data []byte) error {
	refs := toUnicodeRefs(nil, data)
	objStm := bytes.Contains(data, []byte("/ObjStm"))
	if len(refs) == 0 && !objStm {
		return nil
	}
	s.pre = map[int]bool{}
	if objStm {
		forStreams(data, func(kw int, dict, raw []byte) {
			if !bytes.Contains(dict, []byte("/ObjStm")) {
				return
			}
			if content, err := s.decode(dict, raw); err == nil {
				s.pre[kw] = false
				refs = toUnicodeRefs(refs, content)
			}
		})
	}
	if len(refs) == 0 {
		return nil
	}
	var err error
	forStreams(data, func(kw int, dict, raw []byte) {
		if err != nil || !refs[objectNumber(data, kw-len(dict))] {
			return
		}
		content, derr := s.decode(dict, raw)
		if derr != nil {
			return
		}
		s.pre[kw] = true
		err = s.addCMap(content)
	})
	return err
}

// forStreams calls fn for each stream of data, with the offset of its
// "stream" keyword, its dictionary and its raw data.
func forStreams(data []byte, fn func(kw int, dict, raw []byte)) {
	for i := 0; i < len(data); {
		kw, ds, de, next, dict := nextStream(data, i)
		if kw < 0 {
			return
		}
		fn(kw, dict, data[ds:de])
		i = next
	}
}

// maxToUnicodeRefs bounds the CMaps read before the file's pass; a file
// naming more reads the rest where they come.
const maxToUnicodeRefs = 1024

// toUnicodeRefs adds to refs the object numbers b's /ToUnicode entries
// refer to ("/ToUnicode 8 0 R"). A /ToUnicode naming a predefined CMap
// ("/Identity-H") refers to no stream.
func toUnicodeRefs(refs map[int]bool, b []byte) map[int]bool {
	const key = "/ToUnicode"
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 || len(refs) >= maxToUnicodeRefs {
			return refs
		}
		b = b[i+len(key):]
		num, j := readInt(b, skipSpace(b, 0))
		k := skipSpace(b, j)
		gen, l := readInt(b, k)
		m := skipSpace(b, l)
		if num < 0 || gen < 0 || k == j || m == l || m >= len(b) || b[m] != 'R' {
			continue
		}
		if refs == nil {
			refs = map[int]bool{}
		}
		refs[num] = true
	}
}

// readInt reads the digits of b from i on: their value (-1 if none or too
// many) and the offset after them.
func readInt(b []byte, i int) (int, int) {
	v, j := 0, i
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9' && j-i < 10; j++ {
		v = v*10 + int(b[j]-'0')
	}
	if j == i {
		return -1, j
	}
	return v, j
}

// objectNumber returns the number of the object whose "obj" keyword is at
// data[at:] ("8 0 obj", PDF 32000-1 section 7.3.10), or -1.
func objectNumber(data []byte, at int) int {
	if at < 0 || !bytes.HasPrefix(data[at:], []byte("obj")) {
		return -1
	}
	genEnd := skipSpaceBack(data, at)
	gen := skipDigitsBack(data, genEnd)
	numEnd := skipSpaceBack(data, gen)
	num := skipDigitsBack(data, numEnd)
	if gen == genEnd || numEnd == gen || num == numEnd || numEnd-num > 9 {
		return -1
	}
	v, _ := readInt(data, num)
	return v
}

func skipSpaceBack(b []byte, i int) int {
	for i > 0 && (b[i-1] == ' ' || b[i-1] == '\t' || b[i-1] == '\r' || b[i-1] == '\n') {
		i--
	}
	return i
}

func skipDigitsBack(b []byte, i int) int {
	for i > 0 && b[i-1] >= '0' && b[i-1] <= '9' {
		i--
	}
	return i
}
