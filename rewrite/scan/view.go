package scan

import (
	"sort"
	"unicode/utf8"
)

// scView is the text the scanner matches addresses in: the source with its
// encoding undone (HTML markup and character references, iCalendar and
// vCard folding and escapes), and a map back to the source so that a match
// can be replaced where it was written. Percent-encoding stays in the
// view: it is undone per match, since it only means something in URLs.
type scView struct {
	b []byte
	// pieces map view offsets to source offsets, in ascending order of
	// both. Nil means the view is the source itself.
	pieces []scPiece
	// blocks holds the view offsets of HTML block boundaries (<p>, <br>,
	// <td>…), ascending: text on either side is adjacent in the view, but
	// an address is only joined across a boundary when it must be.
	blocks []int
}

// scPiece maps view bytes from v on to source bytes from s on. A plain
// piece maps byte for byte; an atomic one is a single decoded character
// (a character reference or an escape) standing for sn source bytes.
type scPiece struct {
	v, s, sn int
	atomic   bool
}

// scFrag is a source range holding part of a match.
type scFrag struct{ s, e int }

func (v *scView) reset() {
	v.b, v.pieces, v.blocks = v.b[:0], v.pieces[:0], v.blocks[:0]
}

// resetFor empties the view for a text of n source bytes. A decoded view
// is never longer than its source (markup is left out, a character
// reference or escape is at least as long as the character), so room for
// n bytes is made at once: growing a large view by append would copy it
// about five times over.
func (v *scView) resetFor(n int) {
	v.reset()
	if cap(v.b) < n {
		v.b = make([]byte, 0, n)
	}
}

// copyOf appends source bytes src[s:e] to the view.
func (v *scView) copyOf(src []byte, s, e int) {
	if e <= s {
		return
	}
	if n := len(v.pieces); n > 0 {
		p := &v.pieces[n-1]
		if !p.atomic && p.s+p.sn == s && p.v+p.sn == len(v.b) {
			p.sn += e - s
			v.b = append(v.b, src[s:e]...)
			return
		}
	}
	v.pieces = append(v.pieces, scPiece{v: len(v.b), s: s, sn: e - s})
	v.b = append(v.b, src[s:e]...)
}

// decoded appends r, decoded from source bytes [s, e), to the view.
func (v *scView) decoded(s, e int, r rune) {
	v.pieces = append(v.pieces, scPiece{v: len(v.b), s: s, sn: e - s, atomic: true})
	v.b = utf8.AppendRune(v.b, r)
}

// block records a block boundary at the current end of the view.
func (v *scView) block() {
	if n := len(v.blocks); n == 0 || v.blocks[n-1] != len(v.b) {
		v.blocks = append(v.blocks, len(v.b))
	}
}

// isBlock reports whether a block boundary lies at view offset i.
func (v *scView) isBlock(i int) bool {
	if len(v.blocks) == 0 {
		return false
	}
	k := sort.SearchInts(v.blocks, i)
	return k < len(v.blocks) && v.blocks[k] == i
}

// blockIn reports whether a block boundary lies in (vs, ve).
func (v *scView) blockIn(vs, ve int) bool {
	if len(v.blocks) == 0 {
		return false
	}
	k := sort.SearchInts(v.blocks, vs+1)
	return k < len(v.blocks) && v.blocks[k] < ve
}

// frags appends to dst the source ranges that view range [vs, ve) comes
// from: one per stretch of source between tags or folds.
func (v *scView) frags(dst []scFrag, vs, ve int) []scFrag {
	if v.pieces == nil {
		return append(dst, scFrag{vs, ve})
	}
	lo := len(dst)
	k := sort.Search(len(v.pieces), func(i int) bool { return v.pieces[i].v > vs }) - 1
	for ; k < len(v.pieces) && v.pieces[k].v < ve; k++ {
		p := v.pieces[k]
		f := scFrag{p.s, p.s + p.sn}
		if !p.atomic {
			f = scFrag{p.s + max(vs, p.v) - p.v, p.s + min(ve, p.v+p.sn) - p.v}
		}
		if n := len(dst); n > lo && dst[n-1].e == f.s {
			dst[n-1].e = f.e
			continue
		}
		dst = append(dst, f)
	}
	return dst
}
