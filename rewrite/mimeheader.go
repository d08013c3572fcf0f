package rewrite

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// field is one header field: offsets into its header's buffer, which
// holds the raw bytes (name, colon, value, folds and line ending) that are
// emitted unchanged unless the field is rewritten.
type field struct {
	start, end int
	key        string // canonical lower-case name if the rewriter cares, else ""
	// value is set when the field was rewritten: the new unfolded value.
	value   string
	changed bool
}

// mimeHeader is a part's header section. The walker reuses one per level.
type mimeHeader struct {
	buf    []byte
	fields []field
	sep    []byte // the empty line that ended it; empty if none (EOF, delimiter)
	// broken is set when a line that is neither a field nor a fold ended
	// the section without an empty line; it is the body's first line.
	broken []byte
}

func (h *mimeHeader) reset() {
	h.buf, h.fields, h.sep, h.broken = h.buf[:0], h.fields[:0], h.sep[:0], h.broken[:0]
}

// ended reports whether the section ended with an empty line, so a body
// follows.
func (h *mimeHeader) ended() bool { return len(h.sep) > 0 }

func (h *mimeHeader) raw(f *field) []byte { return h.buf[f.start:f.end] }

// name is the field name as written.
func (h *mimeHeader) name(f *field) string {
	r := h.raw(f)
	return string(bytes.TrimRight(r[:bytes.IndexByte(r, ':')], " \t"))
}

// rawValue is the unfolded value: the bytes after the colon, with folding
// line breaks removed (RFC 5322 section 2.2.3) and the ending trimmed.
func (h *mimeHeader) rawValue(f *field) string {
	r := h.raw(f)
	v := bytes.TrimRight(r[bytes.IndexByte(r, ':')+1:], "\r\n")
	if bytes.IndexByte(v, '\n') >= 0 {
		v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
		v = bytes.ReplaceAll(v, []byte("\n"), nil)
	}
	return strings.TrimLeft(string(v), " \t")
}

func (h *mimeHeader) get(key string) *field {
	for i := range h.fields {
		if h.fields[i].key == key {
			return &h.fields[i]
		}
	}
	return nil
}

func (h *mimeHeader) value(key string) string {
	if f := h.get(key); f != nil {
		if f.changed {
			return f.value
		}
		return h.rawValue(f)
	}
	return ""
}

// knownKeys are the field names the rewriter treats specially, mapped to
// constants so that looking a name up allocates nothing.
var knownKeys = func() map[string]string {
	m := map[string]string{"content-type": "content-type", "content-transfer-encoding": "content-transfer-encoding"}
	for k := range msgIDFields {
		m[k] = k
	}
	for k := range addressFields {
		m[k] = k
	}
	return m
}()

func canonicalKey(name []byte) string {
	var buf [48]byte
	if len(name) > len(buf) {
		return ""
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return knownKeys[string(buf[:len(name)])]
}

// readHeader reads a header section into the walker's header. It stops at
// the empty line, at a delimiter line (left for the multipart level), or
// at end of input.
func (w *walker) readHeader(h *mimeHeader) error {
	h.reset()
	for {
		l, err := w.lr.next()
		if err != nil {
			return eofOK(err)
		}
		if l.delim >= 0 {
			return nil
		}
		if len(h.buf)+len(l.b) > w.limits.MaxHeaderBytes {
			return fmt.Errorf("%w: header section larger than %d bytes", ErrLimit, w.limits.MaxHeaderBytes)
		}
		last := len(h.fields) - 1
		switch {
		case isBlankLine(l.b) && !l.partial:
			h.sep = append(h.sep, l.b...)
			return nil
		case (l.b[0] == ' ' || l.b[0] == '\t') && last >= 0,
			l.partial && last >= 0 && !bytes.HasSuffix(h.raw(&h.fields[last]), []byte("\n")):
			h.buf = append(h.buf, l.b...)
			h.fields[last].end = len(h.buf)
		case isFieldStart(l.b):
			start := len(h.buf)
			h.buf = append(h.buf, l.b...)
			name := bytes.TrimRight(l.b[:bytes.IndexByte(l.b, ':')], " \t")
			h.fields = append(h.fields, field{start: start, end: len(h.buf), key: canonicalKey(name)})
		default:
			h.broken = append(h.broken, l.b...)
			return nil
		}
	}
}

func isBlankLine(b []byte) bool {
	return len(b) > 0 && len(bytes.TrimRight(b, "\r\n")) == 0
}

// isFieldStart: ftext name (printable ASCII but colon, RFC 5322 section
// 2.2), optional white space (obsolete syntax, section 4.5), colon.
func isFieldStart(b []byte) bool {
	i := bytes.IndexByte(b, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(b[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// contentType returns the media type in lower case and its parameters;
// text/plain (RFC 2045 section 5.2) when absent or unparsable.
func (h *mimeHeader) contentType() (string, map[string]string) {
	v := h.value("content-type")
	if v == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && mt == "" {
		// mime.ParseMediaType is strict about parameters; recover the
		// type, and a boundary if one is there, from broken fields.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		params = looseParams(v)
	}
	if params == nil {
		params = map[string]string{}
	}
	return mt, params
}

// looseParams extracts name=value parameters from a field that
// mime.ParseMediaType refuses (duplicate or unquoted specials).
func looseParams(v string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(v, ";")[1:] {
		k, val, ok := strings.Cut(p, "=")
		if ok {
			out[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return out
}

// set replaces a field's value, or adds the field.
func (h *mimeHeader) set(name, key, value string) {
	if f := h.get(key); f != nil {
		f.value, f.changed = value, true
		return
	}
	h.fields = append(h.fields, field{key: key, value: "", changed: true})
	f := &h.fields[len(h.fields)-1]
	f.start = len(h.buf)
	h.buf = append(h.buf, name+":"...)
	f.end = len(h.buf)
	f.value = value
}

// writeHeader writes the section: raw bytes for unchanged fields, folded
// new values for changed ones, then the separator.
func (w *walker) writeHeader(h *mimeHeader) error {
	for i := range h.fields {
		f := &h.fields[i]
		b := h.raw(f)
		if f.changed {
			b = []byte(foldField(h.name(f), f.value, w.lr.eol()))
		}
		if w.out != nil && !w.rep.HeaderUTF8 && has8bit(b) {
			w.rep.HeaderUTF8 = true
		}
		if err := w.write(b); err != nil {
			return err
		}
	}
	if err := w.write(h.sep); err != nil {
		return err
	}
	return w.write(h.broken)
}

// foldField writes "Name: value" folded at white space so lines stay
// within 78 characters where the value allows (RFC 5322 section 2.1.1);
// a run without white space is never broken, since that would change it.
func foldField(name, value, eol string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(": ")
	col := len(name) + 2
	for i, word := range strings.Split(value, " ") {
		if i > 0 {
			if col+1+len(word) > 78 && col > len(name)+2 {
				b.WriteString(eol)
				b.WriteString(" ")
				col = 1
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString(eol)
	return b.String()
}

// has8bit reports whether b has an octet outside ASCII.
func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
