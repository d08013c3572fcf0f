package scan

import "bytes"

// scanHTML scans HTML (and XML) in two kinds of view. The text between
// tags, references decoded, is one view: tags take no room in it, so
// "jane<span>@</span>example.com" reads as one address, and block tags
// leave a boundary an address only crosses when it must. Each tag or
// comment holding a candidate is a view of its own: attribute values
// (href="mailto:…"), and comments, which Outlook's conditional comments
// fill with markup, are scanned too. So are <script> and <style>: an
// address there is as much a leak.
func (s *scanner) scanHTML() {
	src := s.src
	s.entAt = scHasEntityAt(src)
	v := &s.v
	v.resetFor(len(src))
	for i := 0; i < len(src); {
		j := bytes.IndexByte(src[i:], '<')
		if j < 0 {
			s.htmlText(v, i, len(src))
			break
		}
		j += i
		e := scTagEnd(src, j)
		if e < 0 { // a '<' that opens no tag is text (HTML 13.2.5.6)
			s.htmlText(v, i, j+1)
			i = j + 1
			continue
		}
		s.htmlText(v, i, j)
		if scBlockTag(src[j:e]) {
			v.block()
		}
		s.htmlTag(j, e)
		i = e
	}
	if v.pieces == nil {
		v.pieces = []scPiece{} // a view of nothing, not the identity
	}
	s.matchView(v, false)
}

// htmlText appends text src[i:j] to a view, decoding character references.
func (s *scanner) htmlText(v *scView, i, j int) {
	src := s.src
	for i < j {
		k := bytes.IndexByte(src[i:j], '&')
		if k < 0 {
			v.copyOf(src, i, j)
			return
		}
		v.copyOf(src, i, i+k)
		i += k
		if r, n := scEntity(src[i:j], true); n > 0 {
			v.decoded(i, i+n, r)
			i += n
			continue
		}
		v.copyOf(src, i, i+1)
		i++
	}
}

// htmlTag scans the inside of tag src[j:e] if it may hold an address.
func (s *scanner) htmlTag(j, e int) {
	src := s.src
	ie := e
	if src[e-1] == '>' && e-1 > j {
		ie = e - 1
	}
	in := src[j+1 : ie]
	if bytes.IndexByte(in, '@') < 0 && !bytes.Contains(in, scPct40) && !(s.entAt && bytes.IndexByte(in, '&') >= 0) {
		return
	}
	t := &s.tag
	t.reset()
	if scIs(rune(src[j+1]), scAlpha) {
		s.attrText(t, j+1, ie)
	} else {
		s.htmlText(t, j+1, ie)
	}
	if t.pieces == nil {
		t.pieces = []scPiece{}
	}
	s.matchView(t, true)
}

// attrText appends the inside of a start tag, src[i:e], to a view. The
// quotes around attribute values become '"' in it: "'" is atext, and a
// match running over a closing quote would, once replaced, change where
// the tag ends. It finds quotes as scStartTagEnd does.
func (s *scanner) attrText(t *scView, i, e int) {
	src := s.src
	start := i
	for ; i < e; i++ {
		if src[i] != '=' {
			continue
		}
		k := i + 1
		for k < e && scHTMLSpace(src[k]) {
			k++
		}
		if k == e || src[k] != '"' && src[k] != '\'' {
			continue
		}
		s.htmlText(t, start, k)
		t.decoded(k, k+1, '"')
		q := bytes.IndexByte(src[k+1:e], src[k])
		if q < 0 {
			start = k + 1
			break
		}
		q += k + 1
		s.htmlText(t, k+1, q)
		t.decoded(q, q+1, '"')
		start, i = q+1, q
	}
	s.htmlText(t, start, e)
}

func scHTMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// scTagEnd returns the end of the tag, comment or other markup starting
// with the '<' at src[j] (HTML 13.2.5.6-8), or -1 if this '<' is text. A
// start tag ends at the first '>' outside a quoted attribute value; other
// markup at the first '>', which cuts a comment holding '>' short, but
// the rest of it is then scanned as text, which loses nothing.
func scTagEnd(src []byte, j int) int {
	if j+1 >= len(src) {
		return -1
	}
	switch c := src[j+1]; {
	case c == '/' || c == '!' || c == '?':
		if k := bytes.IndexByte(src[j+2:], '>'); k >= 0 {
			return j + 2 + k + 1
		}
		return len(src)
	case scIs(rune(c), scAlpha):
		return scStartTagEnd(src, j+2)
	}
	return -1
}

func scStartTagEnd(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case '>':
			return i + 1
		case '=':
			i++
			for i < len(src) && scHTMLSpace(src[i]) {
				i++
			}
			if i < len(src) && (src[i] == '"' || src[i] == '\'') {
				k := bytes.IndexByte(src[i+1:], src[i])
				if k < 0 {
					return len(src)
				}
				i += k + 2
			}
			continue
		}
		i++
	}
	return len(src)
}

// scBlockTag reports whether a tag breaks the line or the box its text is
// in, so that text on its two sides is not one word to a reader. Its name
// runs to white space, '/' or '>' (HTML 13.2.5.8): "<td!x@y.example>" is
// no cell, and an address replaced in a tag name never turns the tag into
// a block.
func scBlockTag(tag []byte) bool {
	i := 1
	if i < len(tag) && tag[i] == '/' {
		i++
	}
	var name [12]byte
	n := 0
	for ; i < len(tag) && !scHTMLSpace(tag[i]) && tag[i] != '/' && tag[i] != '>'; i++ {
		if n == len(name) {
			return false
		}
		c := tag[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		name[n], n = c, n+1
	}
	switch string(name[:n]) {
	case "address", "article", "aside", "blockquote", "body", "br", "button", "caption", "center",
		"dd", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
		"h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hr", "html", "iframe", "img", "input",
		"li", "main", "meta", "nav", "ol", "option", "p", "pre", "script", "section", "select",
		"style", "table", "tbody", "td", "textarea", "tfoot", "th", "thead", "title", "tr", "ul":
		return true
	}
	return false
}
