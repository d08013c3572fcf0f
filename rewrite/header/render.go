package header

import (
	"cmp"
	"strings"
	"unicode/utf8"

	"github.com/tokenproxy/tokenproxy/address"
)

// This file writes what changed back into the field: display names
// (RFC 5322 section 3.2.5, RFC 2047, RFC 6532) and mailboxes (3.4).

// render returns the new text of a changed piece: a group's name, or the
// mailbox followed by the comments that were not its name and hold no '@'
// (those were handed to fn inside the name). A name fn left as it was keeps
// its original bytes when they sit together before the address, so its
// charset, quoting and anything undecodable in it survive.
func (p *afParser) render(pc afPiece, was, m Mailbox) (string, error) {
	words, _ := p.words(pc)
	phrase := ""
	if m.Name != "" {
		phrase = hdrPhrase(m.Name, p.raw)
		if raw, ok := p.rawPhrase(pc); ok && m.Name == was.Name && m.Name == words {
			phrase = raw
		}
	}
	if pc.group {
		return cmp.Or(phrase, `""`), nil
	}
	text, err := hdrMailbox(phrase, m.Addr, pc.angle)
	if err != nil || words == "" {
		return text, err // without words, the comments were the name
	}
	b := strings.Builder{}
	b.WriteString(text)
	for i := pc.ts; i < pc.te; i++ {
		if t := p.toks[i]; t.kind == hkComment {
			if c, _ := p.comment(i); !strings.Contains(c, "@") {
				b.WriteString(" ")
				b.WriteString(p.s[t.start:t.end])
			}
		}
	}
	return b.String(), nil
}

// rawPhrase returns the display name of pc as written, if its words sit
// together before the address with no comment between them.
func (p *afParser) rawPhrase(pc afPiece) (string, bool) {
	first, last := -1, -1
	for i := pc.ts; i < pc.te; i++ {
		if p.inName(pc, i) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || (pc.as < pc.ae && last > pc.as) {
		return "", false
	}
	for i := first; i < last; i++ {
		if p.toks[i].kind == hkComment {
			return "", false
		}
	}
	return p.s[p.toks[first].start:p.toks[last].end], true
}

// result applies the edits.
func (p *afParser) result() string {
	var b strings.Builder
	last := 0
	for _, e := range p.edits {
		b.WriteString(p.s[last:e.start])
		b.WriteString(e.text)
		last = e.end
	}
	b.WriteString(p.s[last:])
	return b.String()
}

// hdrPhrase renders a display name (RFC 5322 section 3.2.5): as atoms when
// it is atoms, else as a quoted-string, else as RFC 2047 encoded-words
// when it holds what a quoted-string may not carry: non-ASCII text in a
// field that had none (RFC 6532 lets a field that already carries UTF-8
// carry more), controls, or text a reader would take for encoded-words.
func hdrPhrase(name string, rawUTF8 bool) string {
	switch {
	case name == "":
		return `""`
	case hdrNeedsWords(name, rawUTF8):
		return hdrEncodeWords(name)
	case hdrIsAtoms(name):
		return name
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			b.WriteByte('\\') // quoted-pair, RFC 5322 section 3.2.1
		}
		b.WriteByte(name[i])
	}
	b.WriteByte('"')
	return b.String()
}

func hdrNeedsWords(name string, rawUTF8 bool) bool {
	if strings.Contains(name, "=?") || (!rawUTF8 && !isASCII(name)) || !utf8.ValidString(name) {
		return true
	}
	for i := 0; i < len(name); i++ {
		if name[i] < ' ' || name[i] == 0x7f {
			return true
		}
	}
	return false
}

// hdrIsAtoms reports whether name is atoms separated by single spaces
// (RFC 5322 section 3.2.3; UTF-8 atext per RFC 6532 section 3.2).
func hdrIsAtoms(name string) bool {
	for _, w := range strings.Split(name, " ") {
		if w == "" {
			return false
		}
		for _, r := range w {
			if !address.IsAtext(r) {
				return false
			}
		}
	}
	return true
}

// hdrMailbox renders a changed mailbox from its rendered display name
// (phrase, "" for none) as name-addr or addr-spec (RFC 5322 section 3.4).
// Without a name the address stands alone, unless it was in angle
// brackets, which are kept (a Return-Path needs them, section 3.6.7).
func hdrMailbox(phrase, addr string, angle bool) (string, error) {
	for i := 0; i < len(addr); i++ {
		if addr[i] < ' ' || addr[i] == 0x7f {
			return "", errControlInAddress
		}
	}
	switch {
	case phrase == "" && !angle:
		return addr, nil
	case phrase == "":
		return "<" + addr + ">", nil
	case addr == "" && !angle:
		return phrase, nil // a bare phrase stays a phrase
	}
	return phrase + " <" + addr + ">", nil
}
