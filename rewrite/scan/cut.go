package scan

import "bytes"

// This file tells where texts other than HTML (HTMLCut) may be cut into
// pieces that are scanned one at a time and find what the whole text
// finds (issue 17, item 7).

// LastSpace returns the index of the last space, tab or line end in b, or
// -1: plain text may be cut after it, as no address crosses white space
// (scMatcher.local and domain stop at it, and what a replacement is
// written after, scGlues and scPctGlues, is never white space).
func LastSpace(b []byte) int { return bytes.LastIndexAny(b, " \t\n") }

// LineCut is HTMLCut for flowed text and for iCalendar and vCard text,
// whose scans join lines: a piece may end only after a line that is
// joined with nothing after it. In flowed text (RFC 3676) that is a line
// that does not end in a soft break (a space, section 4.2; the signature
// separator "-- " is no soft break, section 4.3): the next line starts a
// paragraph, as at the start of the text. In iCalendar and vCard (RFC
// 5545 section 3.1, RFC 6350 section 3.2) it is a line end followed by
// neither a space or tab (a fold) nor another line end: the next content
// line starts there.
//
// It reads src from from on, which must be a line start (0, or a resume
// it returned), and returns the end of the last such line, or -1, and
// where to read on from once src has grown: the start of the first line
// src does not show in full (for a fold, one whose next byte it lacks).
func LineCut(kind TextKind, src []byte, from int) (cut, resume int) {
	cut = -1
	for i := from; i < len(src); {
		le := bytes.IndexByte(src[i:], '\n')
		if le < 0 {
			return cut, i
		}
		le += i
		switch kind {
		case TextFolded:
			if le+1 >= len(src) {
				return cut, i // a fold or not: the next byte says
			}
			// Nor before an empty line: a content line that starts
			// with a fold keeps it where it does not start the text
			// (refold), so the piece must not start there.
			if c := src[le+1]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				cut = le + 1
			}
		case TextFlowed, TextFlowedDelSp:
			end := le
			if end > i && src[end-1] == '\r' {
				end--
			}
			_, cs := scQuoteDepth(src, i, end)
			if !scSoftBreak(src, cs, end) {
				cut = le + 1
			}
		default:
			cut = le + 1
		}
		i = le + 1
	}
	return cut, len(src)
}
