package rewrite

import (
	"bytes"
	"mime"
	"path"
	"strings"
)

// This file reads text sent under a media type that says nothing of its
// content (issue 17, item 4): a .txt or .csv attached as
// application/octet-stream, a saved message without a type, a UTF-16
// export. Before, such a part was streamed as it came: the leak guard saw
// its raw bytes only, so base64 hid every address in it from both the
// rewriter and the guard. Now its first bytes and its file name decide:
// text is read whole, as the kind of text it holds, and rewritten like
// any text part (same transfer encoding and charset, byte-identical when
// nothing changed); anything else streams as before.

// textTypeByExt is the media type whose reader a file name's extension
// asks for; a name is believed only if the content is text too.
var textTypeByExt = map[string]string{
	".txt": "text/plain", ".text": "text/plain", ".log": "text/plain", ".md": "text/plain",
	".csv": "text/csv", ".tsv": "text/plain", ".json": "application/json", ".yaml": "text/plain",
	".yml": "text/plain", ".ini": "text/plain", ".conf": "text/plain", ".cfg": "text/plain",
	".ldif": "text/plain", ".xml": "application/xml", ".html": "text/html", ".htm": "text/html",
	".xhtml": "text/html", ".svg": "application/xml", ".ics": "text/calendar", ".vcs": "text/calendar",
	".vcf": "text/vcard", ".eml": "message/rfc822", ".rtf": "application/rtf",
}

// binaryExts are names whose content is never read as text, even when
// its first bytes look like it: rewriting a PDF or a package as text would
// break its offsets (they have readers of their own, or a policy).
var binaryExts = map[string]bool{
	".pdf": true, ".zip": true, ".gz": true, ".tgz": true, ".tar": true, ".7z": true, ".rar": true,
	".doc": true, ".docx": true, ".xls": true, ".xlsx": true, ".ppt": true, ".pptx": true,
	".odt": true, ".ods": true, ".odp": true, ".p7m": true, ".p7s": true, ".gpg": true, ".pgp": true,
	".exe": true, ".dll": true, ".bin": true, ".png": true, ".jpg": true, ".jpeg": true, ".gif": true,
}

// untypedByName gives a part without a Content-Type field the type its
// file name says, where the name says more than RFC 2045's default
// (text/plain, section 5.2): an RTF, calendar or saved message is read as
// one, and a binary file is sniffed rather than rewritten as text.
func untypedByName(h *mimeHeader, mt string, params map[string]string) string {
	if h.get("content-type") != nil {
		return mt
	}
	name := partFileName(h, params)
	if name == "" {
		return mt
	}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case textTypeByExt[ext] != "":
		return textTypeByExt[ext]
	case binaryExts[ext]:
		return "application/octet-stream"
	}
	return mt
}

// maxSniffedTextBytes bounds the raw size of a generic part read whole as
// text. A larger one streams unread as before: holding it whole would make
// a large attachment cost its size in memory (twice: the guard reads the
// output the same way), which the streaming walk exists to avoid.
const maxSniffedTextBytes = 4 << 20

// sniffedText reads the rest of a part whose first raw bytes head sniffed
// as text of media type mt, checks it is text throughout, and rewrites it
// as a text part of that type.
func (w *walker) sniffedText(h *mimeHeader, params map[string]string, cte string, depth int, mt string, head []byte) error {
	raw, complete, err := w.collectHead(head, min(w.limits.MaxTextPartBytes, maxSniffedTextBytes))
	if err != nil {
		return err
	}
	if !complete {
		return w.streamAfter(h, raw)
	}
	content, _ := decodeCTE(cte, raw)
	if _, ok := sniffText("", content); !ok {
		// Text at its start only: a binary file, passed as before.
		if err := w.d.scanRaw(raw); err != nil {
			return err
		}
		return w.writeHeaderAnd(h, raw)
	}
	return w.leafRaw(h, mt, params, cte, depth, raw)
}

// collectHead reads a body on from raw up to the next delimiter while it
// fits in limit raw bytes; complete is false when it does not, and the
// rest is left unread.
func (w *walker) collectHead(raw []byte, limit int) ([]byte, bool, error) {
	for {
		l, err := w.lr.next()
		if err != nil {
			return raw, true, eofOK(err)
		}
		if l.delim >= 0 {
			return raw, true, nil
		}
		raw = append(raw, l.b...)
		if len(raw) > limit {
			return raw, false, nil
		}
	}
}

// streamAfter writes a part that is not text: the head already read, then
// the rest as it comes, each seen by the guard raw.
func (w *walker) streamAfter(h *mimeHeader, head []byte) error {
	if err := w.d.scanRaw(head); err != nil {
		return err
	}
	if err := w.writeHeaderAnd(h, head); err != nil {
		return err
	}
	return w.rawBody(false)
}

// sniffText decides whether content (decoded from its transfer encoding,
// maybe only its start) is text, and which media type reads it: the one
// its file name says, else RTF, HTML or XML by its first bytes, else
// text/plain. Text is UTF-16 or UTF-32 (charsetOf decodes it later), or
// ASCII-compatible bytes without control characters but white space and
// ESC (ISO-2022).
func sniffText(name string, content []byte) (string, bool) {
	ext := strings.ToLower(path.Ext(name))
	if binaryExts[ext] || bytes.HasPrefix(content, []byte("%PDF-")) || len(bytes.TrimSpace(content)) == 0 {
		return "", false
	}
	if enc, ok := sniffUnicode("", content); ok && (bytes.IndexByte(content, 0) >= 0 || hasUnicodeBOM(content)) {
		text, err := enc.NewDecoder().Bytes(content[:len(content)&^3])
		if err != nil || !isPlainText(text) {
			return "", false
		}
		content = bytes.TrimPrefix(text, []byte("\uFEFF"))
	} else if !isPlainText(content) {
		return "", false
	}
	if mt := textTypeByExt[ext]; mt != "" {
		return mt, true
	}
	start := bytes.TrimLeft(content, " \t\r\n")
	switch {
	case bytes.HasPrefix(start, []byte(`{\rtf`)):
		return "application/rtf", true
	case bytes.HasPrefix(start, []byte("<")):
		return "text/html", true
	}
	return "text/plain", true
}

// isPlainText: no C0 control character but tab, line ends, form feed, ESC
// and a final SUB (the DOS end of file), and no DEL.
func isPlainText(b []byte) bool {
	b = bytes.TrimSuffix(b, []byte{0x1a})
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b || c == 0x7f {
			return false
		}
	}
	return true
}

// partFileName is the part's file name, from Content-Disposition's
// filename or Content-Type's name (RFC 2183, RFC 2231 continuations and
// RFC 2047 words decoded), for its extension only.
func partFileName(h *mimeHeader, params map[string]string) string {
	name := params["name"]
	for i := range h.fields {
		f := &h.fields[i]
		if !strings.EqualFold(h.name(f), "content-disposition") {
			continue
		}
		if _, p, err := mime.ParseMediaType(h.rawValue(f)); err == nil && p["filename"] != "" {
			name = p["filename"]
		}
	}
	if d, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
		name = d
	}
	return strings.TrimRight(strings.TrimSpace(name), ". ")
}
