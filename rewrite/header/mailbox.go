package header

import "strings"

// This file turns the tokens of one piece of an address field into the
// Mailbox that MailboxFunc sees: the display name decoded, the addr-spec as
// written.

// mailbox returns what fn sees of pc, whether fn should see it at all, and
// whether an undecodable encoded-word in it hides '@'.
func (p *afParser) mailbox(pc afPiece) (m Mailbox, report, hidden bool) {
	name, hidden := p.words(pc)
	var buf [4]string
	comments := buf[:0]
	for i := pc.ts; i < pc.te; i++ {
		if p.toks[i].kind == hkComment {
			c, h := p.comment(i)
			comments, hidden = append(comments, c), hidden || h
		}
	}
	if name == "" {
		// RFC 822 habit: "jane@example.com (Jane Doe)" names Jane in a comment.
		name = strings.TrimSpace(strings.Join(comments, " "))
	} else {
		// Comments are not part of a name, but one holding an address must
		// reach fn: it goes into the name.
		b := strings.Builder{}
		for _, c := range comments {
			if strings.Contains(c, "@") {
				b.WriteString(" (" + c + ")")
			}
		}
		if b.Len() > 0 {
			name += b.String()
		}
	}
	m.Name = name
	switch {
	case pc.group:
		return m, true, hidden
	case pc.as == pc.ae: // words only
		return m, strings.Contains(name, "@"), hidden
	}
	addr, h := p.addr(pc)
	m.Addr = addr
	return m, name != "" || addr != "", hidden || h
}

// inName reports whether token i of pc is a word of its display name: not
// white space, a comment, part of the address, or a stray '>'.
func (p *afParser) inName(pc afPiece, i int) bool {
	switch t := p.toks[i]; {
	case t.kind == hkSpace || t.kind == hkComment, i >= pc.as && i < pc.ae:
		return false
	case t.kind == hkSpecial && t.c == '>':
		return false
	}
	return true
}

// words returns the display name of pc: its words outside the address,
// quoted-strings unquoted, encoded-words decoded (also inside quotes:
// mailers put them there and readers decode them), and what separated
// words turned into one space (RFC 5322 section 3.2.5, obs-phrase 4.1).
func (p *afParser) words(pc afPiece) (string, bool) {
	var arr [96]byte
	b := arr[:0]
	first, last, exact, gap := -1, -1, true, false
	for i := pc.ts; i < pc.te; i++ {
		if !p.inName(pc, i) {
			gap = gap || first >= 0
			continue
		}
		t := p.toks[i]
		if gap {
			b = append(b, ' ')
			exact = exact && t.start == p.toks[last].end+1 && p.s[t.start-1] == ' '
		}
		if first < 0 {
			first = i
		}
		if t.kind == hkQuoted {
			b = hdrUnquote(b, p.s[t.start+1:t.end-1])
			exact = false
		} else {
			b = append(b, p.s[t.start:t.end]...)
		}
		last, gap = i, false
	}
	var name string
	switch {
	case first < 0:
		return "", false
	case exact: // the common "Jane Doe": no copy
		name = p.s[p.toks[first].start:p.toks[last].end]
	case first == last && !strings.Contains(p.s[p.toks[first].start:p.toks[first].end], `\`):
		name = p.s[p.toks[first].start+1 : p.toks[first].end-1] // one quoted-string
	default:
		name = string(b)
	}
	name, hidden := hdrDecodeText(name)
	return strings.TrimSpace(name), hidden
}

// comment returns the text of comment token i, decoded.
func (p *afParser) comment(i int) (string, bool) {
	t := p.toks[i]
	text := p.s[t.start+1 : t.end-1]
	if strings.IndexByte(text, '\\') >= 0 {
		text = string(hdrUnquote(nil, text))
	}
	return hdrDecodeText(text)
}

// hdrUnquote appends s with its quoted-pairs undone (RFC 5322 section 3.2.1).
func hdrUnquote(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return b
}

// addr returns the addr-spec of pc as written, without white space and
// comments (which the obsolete syntax allows between its words, RFC 5322
// section 4.4), brackets, an obsolete source route, or a "mailto:" some
// mailers put inside the brackets.
func (p *afParser) addr(pc afPiece) (string, bool) {
	lo, hi := pc.as, pc.ae
	if pc.angle {
		lo++
		if hi > lo && p.special(hi-1, '>') {
			hi--
		}
	}
	var arr [96]byte
	b := arr[:0]
	first, last, exact := -1, -1, true
	for i := lo; i < hi; i++ {
		if p.cfws(i) {
			continue
		}
		if first < 0 {
			first = i
		}
		exact = exact && (last < 0 || p.toks[i].start == p.toks[last].end)
		b, last = append(b, p.s[p.toks[i].start:p.toks[i].end]...), i
	}
	if first < 0 {
		return "", false
	}
	a := p.s[p.toks[first].start:p.toks[last].end]
	if !exact {
		a = string(b)
	}
	if pc.angle {
		a = hdrStripRoute(a)
	}
	if strings.IndexByte(a, '@') < 0 {
		// Not allowed in an addr-spec (RFC 2047 section 5), but a hidden
		// address must surface: best guess is the decoded text.
		return hdrDecodeText(a)
	}
	return a, false
}

// hdrStripRoute removes an obsolete route "@a,@b:" (RFC 5322 section 4.4)
// and a "mailto:" from an angle-addr's content, when what they leave is an
// address: a route holds domains only, so an '@' in one of its domains
// means this is not a route, and all of it goes to fn.
func hdrStripRoute(a string) string {
	if k := strings.IndexByte(a, ':'); k >= 0 && strings.HasPrefix(a, "@") && strings.Contains(a[k:], "@") {
		route := true
		for _, d := range strings.Split(a[:k], ",") {
			route = route && (d == "" || d[0] == '@' && strings.IndexByte(d[1:], '@') < 0)
		}
		if route {
			a = a[k+1:]
		}
	}
	if len(a) > 7 && strings.EqualFold(a[:7], "mailto:") && strings.Contains(a[7:], "@") {
		a = a[7:]
	}
	return a
}
