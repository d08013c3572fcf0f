package scan

// scanFlowed scans format=flowed text (RFC 3676) as its reader sees it: a
// line ending in a space (a soft break, section 4.2) is joined with the
// next line of the same quote depth (section 4.5), that line's quote
// marks and stuffing space (section 4.4) taking no room, and with DelSp=yes
// the soft break's space taking none either (section 4.1). So
// "jane.doe@exa \r\nmple.com" under DelSp=yes is one address, replaced in
// place with the soft break kept: the replacement goes where the address
// starts, and its other pieces are removed (see scFlowedRestuff).
func (s *scanner) scanFlowed() {
	src, v := s.src, &s.v
	v.reset()
	delsp := s.kind == TextFlowedDelSp
	prevFlowed, prevDepth := false, 0
	for i := 0; i < len(src); {
		le := scNext(src, i, '\n')
		end := le
		if end > i && src[end-1] == '\r' {
			end--
		}
		depth, cs := scQuoteDepth(src, i, end)
		from := i
		switch {
		case prevFlowed && depth == prevDepth:
			from = cs // joined: quote marks and stuffing are not text
		case prevFlowed:
			v.decoded(i, i, '\n') // a soft break with nothing to join: a line end
		}
		flowed := scSoftBreak(src, cs, end)
		switch {
		case flowed && delsp:
			v.copyOf(src, from, end-1)
		case flowed:
			v.copyOf(src, from, end)
		default:
			v.copyOf(src, from, min(le+1, len(src)))
		}
		prevFlowed, prevDepth = flowed, depth
		i = le + 1
	}
	if v.pieces == nil {
		v.pieces = []scPiece{}
	}
	s.matchView(v, false)
}

// scSoftBreak reports whether the line whose content is src[cs:end] ends
// in a soft break: a space (section 4.2), unless the line is the
// signature separator "-- " (section 4.3).
func scSoftBreak(src []byte, cs, end int) bool {
	return end > cs && src[end-1] == ' ' && string(src[cs:end]) != "-- "
}

// scQuoteDepth counts the quote marks starting line src[i:end] and returns
// where its content starts, after the stuffing space if there is one
// (RFC 3676 sections 4.4 and 4.5).
func scQuoteDepth(src []byte, i, end int) (depth, cs int) {
	cs = i
	for cs < end && src[cs] == '>' {
		cs++
	}
	depth = cs - i
	if cs < end && src[cs] == ' ' {
		cs++
	}
	return depth, cs
}

// scFlowedRestuff reports whether removing source range [s0, e0), a later
// piece of a replaced address that began a line's content, leaves that
// line starting with a character a reader would take for stuffing or a
// quote mark (' ' or '>'): one space must then be stuffed in its place
// (RFC 3676 section 4.4). A line whose removed piece followed a stuffing
// space keeps that space, which does the job.
func (s *scanner) scFlowedRestuff(s0, e0 int) bool {
	if e0 >= len(s.src) {
		return false
	}
	if s0 > 0 && s.src[s0-1] != '\n' && s.src[s0-1] != '>' {
		return false
	}
	return s.src[e0] == ' ' || s.src[e0] == '>'
}
