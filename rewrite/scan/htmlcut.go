package scan

import "bytes"

// HTMLCut tells where a large HTML text may be cut into pieces that are
// scanned one at a time and find what the whole text finds (issue 17,
// item 7: a large HTML part is not held whole). A safe cut follows white
// space (a space, a tab, a line end) in text, outside every tag and
// comment: the view on its two sides is parted by that character, which
// no address crosses (scMatcher.local and domain stop at it, and what a
// replacement is written after, scGlues, is never white space), and the
// markup after it is read as the whole text's scan reads it, from a
// point where that scan is in text too. HTML written without line ends
// has spaces between its words.
//
// It reads src from from on, which must be a point where the whole
// text's scan is in text (0, or a resume it returned), with scanHTML's
// own tag rules, and stops at the first '<' whose tag, comment or other
// markup src does not show in full (it may end only in bytes not read
// yet). cut is the end of the last white space in text before that, or
// -1; resume is where to read on from once src has grown.
func HTMLCut(src []byte, from int) (cut, resume int) {
	cut = -1
	for i := from; i < len(src); {
		j := bytes.IndexByte(src[i:], '<')
		if j < 0 {
			j = len(src)
		} else {
			j += i
		}
		if k := LastSpace(src[i:j]); k >= 0 {
			cut = i + k + 1
		}
		if j == len(src) {
			return cut, len(src)
		}
		if j+1 >= len(src) {
			return cut, j // what follows the '<' decides whether it opens a tag
		}
		e := scTagEnd(src, j)
		switch {
		case e < 0: // a '<' that opens no tag is text
			i = j + 1
		case e >= len(src):
			// Not ended in src, or at its last byte, where a quoted
			// value that never closes ends too (scStartTagEnd).
			return cut, j
		default:
			i = e
		}
	}
	return cut, len(src)
}
