package header

import "sync"

// RewriteAddressField rewrites a structured address field value (From,
// Sender, Reply-To, To, Cc, Bcc, Resent-*, Return-Path,
// Disposition-Notification-To, …: RFC 5322 sections 3.4 and 3.6, with the
// obsolete forms of 4.4 and the breakage real mailers produce).
//
// value is the raw, unfolded field value. fn is called once per mailbox,
// in order, with the display name decoded and the addr-spec as written
// (comments and white space removed). A group's display name is passed as
// a Mailbox with Addr "" (whether or not the group has members; the Addr
// fn returns for it is ignored), and so is an entry that is only words
// when its decoded text holds '@': an address-looking name reaches fn,
// which decides. A value without '@' and without encoded-words holds no
// address; fn is not called for it.
//
// Nothing holding '@' escapes fn: an entry the grammar cannot explain is
// cut into mailboxes by the addresses in it, stray words join the
// neighbouring mailbox's name, and comments holding '@' are appended to
// the name. What cannot be reached (an undecodable encoded-word hiding
// '@') makes it return a *HeaderError matching ErrUnparsableHeader.
//
// If no mailbox changes, it returns value and false. Otherwise only the
// changed mailboxes are re-serialized (see hdrMailbox); separators, groups,
// other mailboxes and their comments are kept byte for byte. A changed
// mailbox loses its source route and moves its comments after the address.
// The result is not folded.
func RewriteAddressField(value string, fn MailboxFunc) (string, bool, error) {
	if !hdrMayHoldAddress(value) {
		return value, false, nil
	}
	buf := hdrTokPool.Get().(*[]hdrTok)
	defer hdrTokPool.Put(buf)
	toks, ok := hdrLex(value, (*buf)[:0])
	if cap(toks) <= hdrPoolMax {
		*buf = toks
	}
	if !ok {
		return value, false, errTooTangled
	}
	p := afParser{s: value, toks: toks, fn: fn, raw: !isASCII(value)}
	p.parse()
	if p.err != nil {
		return value, false, p.err
	}
	if len(p.edits) == 0 {
		return value, false, nil
	}
	return p.result(), true, nil
}

// hdrTokPool recycles token slices: a field is lexed in well under a
// microsecond, and a fresh slice for each would cost as much again in
// allocation and GC. Slices grown past hdrPoolMax are left to the GC.
var hdrTokPool = sync.Pool{New: func() any { s := make([]hdrTok, 0, 64); return &s }}

const hdrPoolMax = 1024

// afParser walks the tokens of one address field value.
type afParser struct {
	s     string
	toks  []hdrTok
	fn    MailboxFunc
	raw   bool // the value carries raw UTF-8, so a new name may too (RFC 6532)
	edits []afEdit
	err   error
}

// afEdit replaces s[start:end] with text.
type afEdit struct {
	start, end int
	text       string
}

// afPiece is one mailbox, or a group's display name, as tokens [ts, te).
// [as, ae) is its address: the angle-addr with its brackets, or the
// addr-spec; as == ae when there is none.
type afPiece struct {
	ts, te, as, ae int
	angle, group   bool
}

func (p *afParser) special(i int, c byte) bool {
	return p.toks[i].kind == hkSpecial && p.toks[i].c == c
}

// parse splits the list into entries and groups (RFC 5322 section 3.4:
// address-list, group). Outlook's ';' between mailboxes is taken as ','
// outside a group; a group missing its ';' ends with the value.
func (p *afParser) parse() {
	start, inGroup, sawAngle := 0, false, false
	for i := 0; i < len(p.toks) && p.err == nil; i++ {
		if p.toks[i].kind != hkSpecial {
			continue
		}
		switch p.toks[i].c {
		case '<':
			sawAngle = true
			i = p.angleEnd(i) - 1
		case ',', ';':
			if p.toks[i].c == ',' && !sawAngle && p.outlookComma(start, i) {
				continue
			}
			p.entry(start, i)
			if p.toks[i].c == ';' {
				inGroup = false
			}
			start, sawAngle = i+1, false
		case ':':
			// A ':' after an angle-addr or inside a group is junk, not a
			// group: groups do not nest (section 3.4).
			if !inGroup && !sawAngle {
				p.visit(afPiece{ts: start, te: i, as: i, ae: i, group: true})
				start, inGroup = i+1, true
			}
		}
	}
	p.entry(start, len(p.toks))
}

// outlookComma reports whether the ',' at i is inside a display name
// written without quotes ("Doe, Jane <jane@example.com>", as Outlook
// shows names): the words before it hold no address and the next entry
// has an angle-addr. fn then sees the whole name, and a policy that
// replaces names replaces all of it.
func (p *afParser) outlookComma(s, i int) bool {
	if p.blank(s, i) {
		return false
	}
	if words := p.s[p.toks[s].start:p.toks[i-1].end]; hdrMayHoldAddress(words) {
		return false
	}
	for j := i + 1; j < len(p.toks); j++ {
		if p.toks[j].kind == hkSpecial {
			switch p.toks[j].c {
			case '<':
				return true
			case ',', ';', ':':
				return false
			}
		}
	}
	return false
}

// angleEnd returns the token index after the angle-addr opening at lt: after
// its '>', or at what closes it implicitly when '>' is missing: ',' or ';'
// (but a ',' inside an obsolete route "<@a,@b:x@y>" of section 4.4), or
// another '<'.
func (p *afParser) angleEnd(lt int) int {
	route, first := false, true
	for j := lt + 1; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.kind != hkSpecial {
			first = first && (t.kind == hkSpace || t.kind == hkComment)
			continue
		}
		switch t.c {
		case '>':
			return j + 1
		case '<', ';':
			return j
		case ',':
			if !route {
				return j
			}
		case '@':
			route = route || first
		case ':':
			route = false
		}
		first = false
	}
	return len(p.toks)
}

// entry cuts the tokens [s, e) between two separators into mailboxes.
// Each angle-addr takes the words before it as its display name, even
// words that look like an address; what follows holds no angle-addr and is
// cut after each addr-spec, so that mailboxes missing their comma are all
// seen. Words after the last address join that mailbox's name.
func (p *afParser) entry(s, e int) {
	var buf [4]afPiece
	pieces, start := buf[:0], s
	for i := s; i < e; i++ {
		if p.special(i, '<') {
			ae := p.angleEnd(i)
			end := p.skipComments(ae, e)
			pieces = append(pieces, afPiece{ts: start, te: end, as: i, ae: ae, angle: true})
			start, i = end, end-1
		}
	}
	for i := start; i < e; i++ {
		if p.special(i, '@') {
			as, ae := p.specStart(i, start), p.specEnd(i, e)
			end := p.skipComments(ae, e)
			pieces = append(pieces, afPiece{ts: start, te: end, as: as, ae: ae})
			start, i = end, end-1
		}
	}
	switch n := len(pieces); {
	case p.blank(start, e):
	case n > 0:
		pieces[n-1].te = e
	default:
		pieces = append(pieces, afPiece{ts: start, te: e, as: e, ae: e})
	}
	for _, pc := range pieces {
		p.visit(pc)
	}
}

// skipComments returns the index after the comments that follow j (with
// white space between), which belong to the mailbox before them
// ("jane@example.com (Jane Doe)").
func (p *afParser) skipComments(j, e int) int {
	for k := j; k < e; k++ {
		switch p.toks[k].kind {
		case hkComment:
			j = k + 1
		case hkSpace:
		default:
			return j
		}
	}
	return j
}

// specPart reports a token that may be part of an addr-spec: a local-part
// or domain word, or a dot (RFC 5322 section 3.4.1). Encoded-words count:
// they are not allowed there, but hide nothing by being glued on.
func (p *afParser) specPart(i int) bool {
	switch p.toks[i].kind {
	case hkAtom, hkQuoted, hkWord, hkLiteral:
		return true
	}
	return p.special(i, '.')
}

func (p *afParser) cfws(i int) bool {
	return p.toks[i].kind == hkSpace || p.toks[i].kind == hkComment
}

// specStart returns the first token of the addr-spec whose '@' is at. The
// obsolete syntax allows CFWS around '@' (RFC 5322 section 4.4), so it is
// crossed when a word stands before it.
func (p *afParser) specStart(at, lo int) int {
	j, k := at, at-1
	for k >= lo && p.cfws(k) {
		k--
	}
	if k >= lo && p.specPart(k) {
		j = k + 1
	}
	for j > lo && p.specPart(j-1) {
		j--
	}
	return j
}

// specEnd returns the token after the addr-spec whose '@' is at. Further
// '@'s ("a@b@example.com") stay in: the caller gets the whole best guess.
func (p *afParser) specEnd(at, hi int) int {
	j, k := at+1, at+1
	for k < hi && p.cfws(k) {
		k++
	}
	if k < hi && (p.specPart(k) || p.special(k, '@')) {
		j = k
	}
	for j < hi && (p.specPart(j) || p.special(j, '@')) {
		j++
	}
	return j
}

// blank reports whether tokens [s, e) are only white space.
func (p *afParser) blank(s, e int) bool {
	for i := s; i < e; i++ {
		if p.toks[i].kind != hkSpace {
			return false
		}
	}
	return true
}

// visit hands one piece to fn and records its new text if it changed.
func (p *afParser) visit(pc afPiece) {
	if p.err != nil || p.blank(pc.ts, pc.te) {
		return
	}
	m, report, hidden := p.mailbox(pc)
	if hidden {
		p.err = errHiddenAddress
		return
	}
	if !report {
		return
	}
	out, changed, err := p.fn(m)
	if err != nil || !changed {
		p.err = err
		return
	}
	text, err := p.render(pc, m, out)
	if err != nil {
		p.err = err
		return
	}
	start, end := p.span(pc)
	if text != p.s[start:end] {
		p.edits = append(p.edits, afEdit{start: start, end: end, text: text})
	}
}

// span returns the bytes of pc without its surrounding white space.
func (p *afParser) span(pc afPiece) (start, end int) {
	ts, te := pc.ts, pc.te
	for p.toks[ts].kind == hkSpace {
		ts++
	}
	for p.toks[te-1].kind == hkSpace {
		te--
	}
	return p.toks[ts].start, p.toks[te-1].end
}
