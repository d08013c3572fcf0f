package rewrite

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// errUndecodable marks a body whose transfer encoding or charset cannot be
// undone: it is unscannable.
var errUndecodable = errors.New("undecodable")

// leaf rewrites a text part (or an encoded message/* part): the body is
// decoded, scanned and, only if something changed, re-encoded in the
// part's own transfer encoding and charset; line by line where it can
// (streamText), else in pieces (streamPieces), else held whole. An
// unchanged part is written back byte for byte.
func (w *walker) leaf(h *mimeHeader, mt string, params map[string]string, cte string, depth int) error {
	if w.streamable(mt, params, cte) {
		return w.streamText(h, cte)
	}
	if c, ok := w.pieceCodecOf(mt, params, cte); ok {
		return w.streamPieces(h, mt, params, cte, depth, c) // piecestream.go
	}
	raw, err := w.collect()
	if err != nil {
		return err
	}
	return w.leafRaw(h, mt, params, cte, depth, raw)
}

// leafRaw is leaf with the body already collected; mt says how its text
// is read (a generic type sniffed as text reads as the type it holds).
func (w *walker) leafRaw(h *mimeHeader, mt string, params map[string]string, cte string, depth int, raw []byte) error {
	// The decoded text is what is scanned: a raw scan of a decoded part
	// would misread calendar folds and quoted-printable soft breaks.
	content, err := decodeCTE(cte, raw)
	if err != nil {
		return w.leafUnscannable(h, raw, "transfer encoding")
	}
	enc, text, err := decodeCharset(params["charset"], content)
	if err != nil {
		return w.leafUnscannable(h, raw, "charset")
	}
	newText, changed, err := w.rewriteBodyOf(mt, params, text, depth)
	if err != nil || !changed || w.out == nil {
		if err == nil {
			err = w.writeHeaderAnd(h, raw)
		}
		return err
	}
	w.rep.Changed++
	newContent := encodeCharset(h, params, enc, newText)
	newRaw := encodeCTE(h, cte, newContent, w.lr.eol(), bytes.HasSuffix(raw, []byte("\n")))
	return w.writeHeaderAnd(h, newRaw)
}

func (w *walker) writeHeaderAnd(h *mimeHeader, body []byte) error {
	if err := w.writeHeader(h); err != nil {
		return err
	}
	return w.write(body)
}

// rewriteBody scans decoded text, or walks an encoded message/* body as a
// message of its own.
func (w *walker) rewriteBody(mt string, text []byte, depth int) ([]byte, bool, error) {
	return w.rewriteBodyOf(mt, nil, text, depth)
}

// rewriteBodyOf is rewriteBody for a part whose Content-Type parameters
// say more of its text (format=flowed).
func (w *walker) rewriteBodyOf(mt string, params map[string]string, text []byte, depth int) ([]byte, bool, error) {
	if mt == "text/rfc822-headers" {
		return w.rewriteHeaderBlock(text) // headerblock.go
	}
	kind := bodyKind(mt, params) // textkind.go
	if kind >= 0 {
		return w.d.rewriteText(kind, text)
	}
	var out bytes.Buffer
	sub := &walker{ctx: w.ctx, lr: newLineReader(bytes.NewReader(text), 0), d: w.d, rep: w.rep, limits: w.limits, budget: w.budget}
	defer sub.lr.release()
	defer sub.releaseHeld()
	sub.takeScratch()
	defer sub.releaseScratch()
	if w.out != nil {
		out.Grow(len(text) + len(text)/16 + 64) // tokens grow a text a little: sized once
		sub.out = bufioWriter(&out)
	}
	if err := sub.entity(depth + 1); err != nil {
		return nil, false, err
	}
	if err := sub.drain(); err != nil {
		return nil, false, err
	}
	if sub.out == nil {
		return text, false, nil
	}
	if err := sub.out.Flush(); err != nil {
		return nil, false, err
	}
	return out.Bytes(), !bytes.Equal(out.Bytes(), text), nil
}

func (w *walker) leafUnscannable(h *mimeHeader, raw []byte, why string) error {
	if w.d.rejectUnscannable {
		return fmt.Errorf("%w: %s", ErrUnscannable, why)
	}
	if err := w.d.scanRaw(raw); err != nil { // all the guard can check
		return err
	}
	return w.writeHeaderAnd(h, raw)
}

// decodeCTE undoes the transfer encoding (RFC 2045 section 6). Broken
// quoted-printable is common in the wild; it is scanned as it stands,
// which is where its addresses are visible anyway.
func decodeCTE(cte string, raw []byte) ([]byte, error) {
	switch strings.TrimSpace(cte) {
	case "", "7bit", "8bit", "binary":
		return raw, nil
	case "quoted-printable":
		// Decoded text is never longer than its encoding: sized once, it
		// is read without the copies of a growing buffer.
		out := bytes.NewBuffer(make([]byte, 0, len(raw)+bytes.MinRead))
		if _, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(raw))); err != nil {
			return raw, nil
		}
		return out.Bytes(), nil
	case "base64":
		return decodeBase64Lenient(raw), nil
	}
	return nil, errUndecodable
}

// decodeBase64Lenient decodes base64 as mail clients do: characters
// outside the alphabet (line ends, stray punctuation) and padding are
// ignored, and a dangling single character is dropped. RFC 2045 section
// 6.8 asks decoders to ignore characters outside the alphabet.
func decodeBase64Lenient(raw []byte) []byte {
	clean := make([]byte, 0, len(raw))
	for _, c := range raw {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	// Decoded in place, a block at a time: each block's bytes are shorter
	// than its characters and land behind them, so the part needs no
	// second buffer.
	var block [3 << 10]byte
	n := 0
	for i := 0; i < len(clean); i += 4 << 10 {
		k, _ := base64.RawStdEncoding.Decode(block[:], clean[i:min(i+4<<10, len(clean))])
		n += copy(clean[n:], block[:k])
	}
	return clean[:n]
}

// encodeCTE re-encodes changed content in the part's transfer encoding.
// 7bit content that gained 8-bit characters (an outbound UTF-8 address)
// becomes quoted-printable, and the header says so.
func encodeCTE(h *mimeHeader, cte string, content []byte, eol string, endsWithEOL bool) []byte {
	cte = strings.TrimSpace(cte)
	if (cte == "" || cte == "7bit") && !asciiBytes(content) {
		cte = "quoted-printable"
		h.set("Content-Transfer-Encoding", "content-transfer-encoding", cte)
	}
	var out []byte
	switch cte {
	case "quoted-printable":
		// Sized for the usual growth (soft breaks, a few escapes) once.
		b := bytes.NewBuffer(make([]byte, 0, len(content)+len(content)/16+64))
		qw := quotedprintable.NewWriter(b)
		qw.Write(content)
		qw.Close()
		out = b.Bytes()
		if eol == "\n" {
			out = crlfToLF(out)
		}
	case "base64":
		out = wrapBase64(content, eol)
	default:
		out = content
	}
	if endsWithEOL && !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, eol...) // the line end before a delimiter belongs to it
	}
	return out
}

// wrapBase64 writes base64 in lines of 76 characters (RFC 2045 6.8): 57
// bytes a line, encoded straight into an output of its final size.
func wrapBase64(content []byte, eol string) []byte {
	n := base64.StdEncoding.EncodedLen(len(content))
	lines := max((n+75)/76, 1)
	out := make([]byte, 0, n+lines*len(eol))
	for len(content) > 57 {
		out = base64.StdEncoding.AppendEncode(out, content[:57])
		out = append(out, eol...)
		content = content[57:]
	}
	out = base64.StdEncoding.AppendEncode(out, content)
	return append(out, eol...)
}

// crlfToLF turns CRLF line ends into LF in place.
func crlfToLF(b []byte) []byte {
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			continue
		}
		b[n] = b[i]
		n++
	}
	return b[:n]
}

// decodeCharset returns the text as UTF-8. UTF-8 and US-ASCII (and no
// charset), and unknown labels on ASCII-compatible bytes, are scanned as
// they are, byte for byte (charsetOf, charset.go).
func decodeCharset(name string, content []byte) (encoding.Encoding, []byte, error) {
	enc, err := charsetOf(name, content)
	if err != nil || enc == nil {
		return nil, content, err
	}
	text, err := enc.NewDecoder().Bytes(content)
	if err != nil {
		return nil, nil, errUndecodable
	}
	return enc, text, nil
}

// lookupCharset resolves a MIME charset name as go-message's charset
// package does (IANA MIME names, "cs" aliases, then WHATWG labels); that
// package only decodes, and a changed part must be encoded back.
func lookupCharset(name string) (encoding.Encoding, error) {
	enc, err := ianaindex.MIME.Encoding(name)
	if enc == nil {
		enc, err = ianaindex.MIME.Encoding("cs" + name)
	}
	if enc == nil {
		enc, err = htmlindex.Get(name)
	}
	if enc == nil || err != nil {
		return nil, errUndecodable
	}
	return enc, nil
}

// encodeCharset encodes changed text back into the part's charset. Text
// the charset cannot represent (an outbound UTF-8 address in a Latin-1
// part) switches the part to UTF-8, and the header says so.
func encodeCharset(h *mimeHeader, params map[string]string, enc encoding.Encoding, text []byte) []byte {
	if enc == nil {
		return text
	}
	if out, err := enc.NewEncoder().Bytes(text); err == nil {
		return out
	}
	setParam(h, "content-type", "charset", "utf-8")
	return text
}

// setParam sets one parameter of a header field (Content-Type), keeping
// the media type and the other parameters.
func setParam(h *mimeHeader, key, param, value string) {
	mt, params := h.contentType()
	params[param] = value
	h.set("Content-Type", key, formatMediaType(mt, params))
}

func formatMediaType(mt string, params map[string]string) string {
	if s := mime.FormatMediaType(mt, params); s != "" {
		return s
	}
	return mt + "; charset=utf-8"
}

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 4096) }

// asciiBytes is isASCII for bytes, eight at a time: it runs over whole
// parts, which a conversion to string would copy first.
func asciiBytes(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// isASCII is tokenize's, kept private here: a character test is not worth
// an exported helper in the token map's package.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
