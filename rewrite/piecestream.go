package rewrite

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// This file rewrites, in pieces, the large text parts that streamText
// (textstream.go) cannot take line by line and that used to be held whole
// (issue 17, item 7): HTML, flowed text, calendars and vCards, text in
// base64, and text in a single-byte charset. A part is decoded as it is
// read, its transfer encoding and then its charset; the decoded text is
// scanned a piece at a time, each piece ending where scanning it alone
// finds what scanning the whole finds (after white space; in HTML outside
// every tag, scan.HTMLCut; in flowed text and calendars after a line that
// joins nothing after it, scan.LineCut); and the part is written as it
// came until a piece changes. From there on it is encoded again, in its
// own transfer encoding and charset.
//
// A part of at most pieceFromBytes is held and rewritten as before
// (leafRaw), byte for byte as before; so is a part whose first piece looks
// like UTF-16 or UTF-32 (a NUL or a byte order mark: charsetOf sniffs
// those).

// pieceFromBytes: a text part up to this size is held whole, as before.
// Held, it is rewritten fastest (one pass, and fewer copies: a 100 KB
// HTML part took 1.8 times as long in pieces), and what it holds stays
// within what a part may hold outside the held-part budget
// (heldFreeBytes); so does a larger part, read in pieces, whose first
// piece is at most this and a line long, the next ones streamChunkBytes.
const pieceFromBytes = heldFreeBytes - streamChunkBytes

// pieceCodec is how a part's bytes become the text that is scanned.
type pieceCodec struct {
	cte  string           // "" (none: 7bit, 8bit, binary), "quoted-printable" or "base64"
	cm   *charmap.Charmap // nil: the text is the bytes (UTF-8, US-ASCII)
	kind scan.TextKind    // how the text is scanned (bodyKind)
}

// pieceCodecOf reports whether a text part can be rewritten in pieces,
// and how. Beyond what streamable takes, that holds for plain text, HTML,
// flowed text, iCalendar and vCard (not RTF, whose groups span lines), in
// any transfer encoding but an unknown one, and in UTF-8, US-ASCII or a
// single-byte charset that pieceCharmap takes: a piece then decodes, and
// a changed piece encodes, alone. Stateful and multi-byte charsets
// (ISO-2022-JP, UTF-7, UTF-16, Shift_JIS…) are held.
//
// A rewrite whose replacements may not be ASCII (an outbound UTF-8
// address) writes nothing that the part's header would have to announce
// in a 7bit part or a single-byte charset: those are held, as the header
// is written before the part's text is (encodeCTE, encodeCharset).
func (w *walker) pieceCodecOf(mt string, params map[string]string, cte string) (pieceCodec, bool) {
	kind := bodyKind(mt, params)
	switch {
	case mt == "text/rfc822-headers": // a header section (headerblock.go)
		return pieceCodec{}, false
	case kind == scan.TextPlain, kind == scan.TextHTML, kind == scan.TextFlowed, kind == scan.TextFlowedDelSp,
		kind == scan.TextFolded:
	default: // RTF, and what is not text
		return pieceCodec{}, false
	}
	c := pieceCodec{kind: kind}
	switch strings.TrimSpace(cte) {
	case "8bit", "binary":
	case "", "7bit":
		if !w.d.asciiOut {
			return pieceCodec{}, false
		}
	case "quoted-printable", "base64":
		c.cte = strings.TrimSpace(cte)
	default:
		return pieceCodec{}, false
	}
	name := cleanLabel(params["charset"])
	switch name {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return c, true
	}
	if unicodeFamily(name) != 0 || !w.d.asciiOut {
		return pieceCodec{}, false
	}
	enc, err := lookupCharset(name)
	if err != nil {
		return pieceCodec{}, false
	}
	cm, ok := enc.(*charmap.Charmap)
	if !ok || !pieceCharmap(cm) {
		return pieceCodec{}, false
	}
	c.cm = cm
	return c, true
}

// pieceCharmap reports whether cm can be read in pieces: its ASCII half
// is ASCII (so a line end is a line end and markup is markup), and every
// byte that is a character encodes back to itself. A byte that is no
// character in it (0x81 in windows-1252) is read as a private-use
// character standing for that byte (charmapEscape), which, like the
// U+FFFD the part held whole reads, is part of no address, and is
// written back as the byte it was.
func pieceCharmap(cm *charmap.Charmap) bool {
	for b := 0; b < 256; b++ {
		r := cm.DecodeByte(byte(b))
		switch {
		case b < utf8.RuneSelf && r != rune(b):
			return false
		case r == utf8.RuneError:
			continue
		}
		if e, ok := cm.EncodeRune(r); !ok || e != byte(b) || isCharmapEscape(r) {
			return false
		}
	}
	return true
}

// charmapEscape is where the private-use characters that stand for bytes
// that are no character start (as Python's surrogateescape does it).
const charmapEscape = 0xF700

func isCharmapEscape(r rune) bool { return r >= charmapEscape && r < charmapEscape+256 }

// decodeCharmap decodes single-byte text to UTF-8, one character a byte.
func decodeCharmap(cm *charmap.Charmap, b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		if c < utf8.RuneSelf {
			out = append(out, c)
			continue
		}
		r := cm.DecodeByte(c)
		if r == utf8.RuneError {
			r = charmapEscape + rune(c)
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// encodeCharmap encodes UTF-8 text back to single-byte text. Only text
// decodeCharmap made, with ASCII replacements, is given to it.
func encodeCharmap(cm *charmap.Charmap, b []byte) ([]byte, error) {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		if b[0] < utf8.RuneSelf {
			out, b = append(out, b[0]), b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		c, ok := cm.EncodeRune(r)
		switch {
		case isCharmapEscape(r):
			c = byte(r - charmapEscape)
		case !ok:
			return nil, fmt.Errorf("%w: a changed text does not encode in its charset", ErrUnscannable)
		}
		out, b = append(out, c), b[n:]
	}
	return out, nil
}

// qpBatchBytes is how much quoted-printable is decoded at a time.
const qpBatchBytes = 16 << 10

// pieceSync is a point where the part's bytes so far decode to exactly
// its content so far: the part may be written as it came up to there. It
// is a line end (a soft line break in quoted-printable too), in base64
// one that ends a group of four characters.
type pieceSync struct{ raw, content int }

// pieceStream is the state of one part rewritten in pieces.
type pieceStream struct {
	w     *walker
	c     pieceCodec
	total int // the part's bytes read

	// raw holds the part's bytes not written yet, content their decoded
	// form (both from the last sync point written), and syncs the sync
	// points in them. Once the part is encoded again, raw only holds a
	// quoted-printable line not ended yet.
	raw     []byte
	content []byte
	syncs   []pieceSync
	decoded int     // raw[:decoded] is decoded into content
	quad    [4]byte // base64 characters of a group not complete yet
	nquad   int
	clean   []byte // base64: a line's characters of the alphabet

	scanned int // content[:scanned] is scanned
	cut     int // a safe end of the next piece in content, or -1
	checked int // plain text: content[:checked] was searched for a cut; HTML: where to search again
	resume  int // HTML: where scan.HTMLCut reads on

	changed   bool // a piece changed
	reencode  bool // the part is written encoded again (it changed)
	lastRawNL bool // the part's last byte so far is a line end
	enc       *pieceEncoder
}

// streamPieces rewrites a text part in pieces (see pieceCodecOf).
func (w *walker) streamPieces(h *mimeHeader, mt string, params map[string]string, cte string, depth int, c pieceCodec) error {
	w.releaseHeld() // a new part: the previous one is written
	ps := &pieceStream{w: w, c: c, raw: w.scratch[:0], cut: -1}
	defer func() {
		w.scratch = ps.raw[:0]
		if ps.content != nil && cap(ps.content) <= 1<<20 {
			b := ps.content[:0]
			scratchPool.Put(&b)
		}
	}()
	end, err := ps.readFirst()
	if err != nil {
		return err
	}
	if end || ps.looksUnicode() {
		if !end {
			if err := ps.readRest(); err != nil {
				return err
			}
		}
		return w.leafRaw(h, mt, params, cte, depth, ps.raw)
	}
	if err := w.writeHeader(h); err != nil {
		return err
	}
	ps.enc = newPieceEncoder(w, c.cte)
	for !end {
		if end, err = ps.fill(); err != nil {
			return err
		}
		if err := ps.piece(end); err != nil {
			return err
		}
	}
	if ps.changed && w.out != nil {
		w.rep.Changed++
	}
	return ps.finish()
}

// readFirst reads the part's first pieceFrom bytes as they are, without
// decoding them: a part that ends before (most parts) is held as before.
func (ps *pieceStream) readFirst() (end bool, err error) {
	for len(ps.raw) <= ps.w.limits.pieceFrom {
		l, ok, err := ps.nextLine()
		if err != nil || !ok {
			return true, err
		}
		ps.raw = append(ps.raw, l...)
		if err := ps.w.reserveHeld(len(ps.raw)); err != nil {
			return false, err
		}
	}
	// Decode what was read, line by line as fill does, into content
	// with room for it and the pieces after it (pooled as scratch is).
	ps.content = *scratchPool.Get().(*[]byte)
	if need := len(ps.raw) + 2*streamChunkBytes; cap(ps.content) < need {
		ps.content = make([]byte, 0, need)
	}
	ps.content = ps.content[:0]
	for i := 0; i < len(ps.raw); {
		j := bytes.IndexByte(ps.raw[i:], '\n')
		if j < 0 {
			j = len(ps.raw)
		} else {
			j += i + 1
		}
		ps.decode(j)
		i = j
	}
	return false, nil
}

// readRest reads the rest of a part that is held after all.
func (ps *pieceStream) readRest() error {
	for {
		l, ok, err := ps.nextLine()
		if err != nil || !ok {
			return err
		}
		ps.raw = append(ps.raw, l...)
		if err := ps.w.reserveHeld(len(ps.raw)); err != nil {
			return err
		}
	}
}

// nextLine returns the part's next line; ok is false at its end.
func (ps *pieceStream) nextLine() ([]byte, bool, error) {
	w := ps.w
	l, err := w.lr.next()
	if err != nil {
		return nil, false, eofOK(err)
	}
	if l.delim >= 0 {
		return nil, false, nil
	}
	if ps.total += len(l.b); ps.total > w.limits.MaxTextPartBytes {
		return nil, false, fmt.Errorf("%w: text part larger than %d bytes", ErrLimit, w.limits.MaxTextPartBytes)
	}
	return l.b, true, nil
}

// looksUnicode: the first piece holds a NUL or starts with a byte order
// mark, which charsetOf reads as UTF-16 or UTF-32 (within its first
// unicodeSniffBytes): such a part is held, to be read as it always was.
func (ps *pieceStream) looksUnicode() bool {
	head := ps.content[:min(len(ps.content), unicodeSniffBytes)]
	return bytes.IndexByte(head, 0) >= 0 || hasUnicodeBOM(head)
}

// fill reads lines until a piece can be cut, or to the part's end.
func (ps *pieceStream) fill() (end bool, err error) {
	for !ps.ready() {
		l, ok, err := ps.nextLine()
		if err != nil {
			return false, err
		}
		if !ok {
			return true, nil
		}
		ps.raw = append(ps.raw, l...)
		ps.decode(len(ps.raw))
		// What is held is the part's bytes not written yet, or their
		// decoded form: counted as a held part's own bytes are.
		if err := ps.w.reserveHeld(max(len(ps.raw), len(ps.content))); err != nil {
			return false, err
		}
	}
	return false, nil
}

// ready reports whether a piece of at least streamChunkBytes of content
// waits and a safe cut ends one: after white space in plain text, which
// no address crosses (streamable says why for line ends; spaces and tabs
// end an address as surely), in HTML after white space outside every
// tag (scan.HTMLCut), and in flowed text, iCalendar and vCard after a
// line that joins no line after it (scan.LineCut). Text without line
// ends (HTML written on one line) is cut at a space all the same.
func (ps *pieceStream) ready() bool {
	if len(ps.content)-ps.scanned < streamChunkBytes {
		return false
	}
	switch ps.c.kind {
	case scan.TextFlowed, scan.TextFlowedDelSp, scan.TextFolded:
		cut, resume := scan.LineCut(ps.c.kind, ps.content[ps.scanned:], ps.resume)
		if ps.resume = resume; cut >= 0 {
			ps.cut = cut
		}
	case scan.TextHTML:
		// HTMLCut reads a tag that is not over yet again each time:
		// the content must have grown by an eighth since, so a long
		// tag costs a few readings, not one per line.
		if len(ps.content) < ps.checked {
			return false
		}
		cut, resume := scan.HTMLCut(ps.content[ps.scanned:], ps.resume)
		if ps.resume = resume; cut >= 0 {
			ps.cut = cut
		}
		ps.checked = len(ps.content) + max(4<<10, (len(ps.content)-ps.scanned)/8)
	default:
		from := max(ps.checked, ps.scanned)
		if k := scan.LastSpace(ps.content[from:]); k >= 0 {
			ps.cut = from + k + 1 - ps.scanned
		}
		ps.checked = len(ps.content)
	}
	return ps.cut > 0
}

// decode decodes raw[ps.decoded:upto], which ends at a line end or where
// the line reader cut a long line, into content, and notes sync points.
func (ps *pieceStream) decode(upto int) {
	line := ps.raw[ps.decoded:upto]
	ps.lastRawNL = len(line) > 0 && line[len(line)-1] == '\n'
	switch ps.c.cte {
	case "":
		ps.content = append(ps.content, line...)
		ps.decoded = upto
		ps.sync()
	case "quoted-printable":
		// Each line decodes alone, a soft line break too (an escape
		// never spans one; RFC 2045 section 6.7 rules 3 and 5), so text
		// written without hard line breaks decodes as it comes. Lines
		// are decoded some KiB at a time, as a decoder costs a buffer of
		// its own.
		if !chunkEnds(line, false) || len(line) < qpBatchBytes {
			return // decoded with the lines that end it
		}
		text, _ := decodeCTE(ps.c.cte, line)
		ps.content = append(ps.content, text...)
		ps.decoded = upto
		ps.sync()
	case "base64":
		ps.decodeBase64(line)
		ps.decoded = upto
		if ps.nquad == 0 { // a line the line reader cut in two, too
			ps.sync()
		}
	}
	if ps.reencode && ps.decoded == len(ps.raw) {
		// Nothing is written as it came any more: keep no raw bytes.
		ps.raw, ps.decoded = ps.raw[:0], 0
	}
}

// decodeBase64 decodes a line of base64 as decodeBase64Lenient decodes a
// part: characters outside the alphabet and padding are left out, and
// groups of four run on across lines.
func (ps *pieceStream) decodeBase64(line []byte) {
	clean := append(ps.clean[:0], ps.quad[:ps.nquad]...)
	for _, c := range line {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	n := len(clean) &^ 3
	ps.content, _ = base64.RawStdEncoding.AppendDecode(ps.content, clean[:n])
	ps.nquad = copy(ps.quad[:], clean[n:])
	ps.clean = clean
}

// endBase64 decodes the last group: two or three characters make one or
// two bytes; a single one is dropped (decodeBase64Lenient).
func (ps *pieceStream) endBase64() {
	if ps.nquad >= 2 {
		var dst [3]byte
		n, _ := base64.RawStdEncoding.Decode(dst[:], ps.quad[:ps.nquad])
		ps.content = append(ps.content, dst[:n]...)
	}
	ps.nquad = 0
}

// sync notes a sync point, at most one each syncEveryBytes of the part:
// what is written as it came waits for the next one.
func (ps *pieceStream) sync() {
	if ps.reencode || ps.w.out == nil {
		return
	}
	if n := len(ps.syncs); n > 0 && ps.decoded-ps.syncs[n-1].raw < syncEveryBytes {
		return
	}
	ps.syncs = append(ps.syncs, pieceSync{raw: ps.decoded, content: len(ps.content)})
}

// syncEveryBytes is how far apart sync points are noted.
const syncEveryBytes = 4 << 10

// endDecode decodes what the part's end leaves: quoted-printable lines
// without a hard line break after them, base64's last group.
func (ps *pieceStream) endDecode() {
	switch ps.c.cte {
	case "quoted-printable":
		if ps.decoded < len(ps.raw) {
			text, _ := decodeCTE(ps.c.cte, ps.raw[ps.decoded:])
			ps.content = append(ps.content, text...)
			ps.decoded = len(ps.raw)
		}
	case "base64":
		ps.endBase64()
	}
}

// piece scans the next piece (at the part's end, the rest) and writes
// what can be written of the part.
func (ps *pieceStream) piece(end bool) error {
	stop := ps.scanned + ps.cut
	if end {
		ps.endDecode()
		stop = len(ps.content)
	}
	text := ps.content[ps.scanned:stop]
	utext := text
	if ps.c.cm != nil {
		utext = decodeCharmap(ps.c.cm, text)
	}
	newText, changed, err := ps.w.d.rewriteText(ps.c.kind, utext)
	if err != nil {
		return err
	}
	ps.changed = ps.changed || changed
	ps.cut, ps.resume = -1, 0
	if ps.c.kind == scan.TextHTML {
		ps.checked = 0
	}
	switch {
	case ps.w.out == nil: // the guard writes nothing
		ps.scanned = stop
		ps.shift(ps.decoded, stop)
		return nil
	case !ps.reencode && !changed:
		ps.scanned = stop
		return ps.writeRaw(ps.scanned)
	}
	out := text
	if changed {
		// newText is the scanner's own: text may move below.
		if out, err = ps.encodeCharset(newText); err != nil {
			return err
		}
	}
	if !ps.reencode {
		// The first change: the part is written as it came up to the
		// last sync point before this piece, and encoded from there.
		n := stop - ps.scanned
		if err := ps.writeRaw(ps.scanned); err != nil {
			return err
		}
		ps.reencode, ps.syncs, stop = true, nil, ps.scanned+n
		if err := ps.enc.write(ps.content[:ps.scanned]); err != nil {
			return err
		}
	}
	if err := ps.enc.write(out); err != nil {
		return err
	}
	ps.scanned = stop
	ps.shift(ps.decoded, stop)
	return nil
}

// encodeCharset encodes changed text back into the part's charset: every
// character of the part encodes (pieceCharmap), and replacements are
// ASCII (pieceCodecOf).
func (ps *pieceStream) encodeCharset(text []byte) ([]byte, error) {
	if ps.c.cm == nil {
		return text, nil
	}
	return encodeCharmap(ps.c.cm, text)
}

// writeRaw writes the part as it came up to the last sync point whose
// content is at most upto, and lets go of what it wrote.
func (ps *pieceStream) writeRaw(upto int) error {
	k := -1
	for i, s := range ps.syncs {
		if s.content > upto {
			break
		}
		k = i
	}
	if k < 0 {
		return nil // the start of raw is the last sync point
	}
	s := ps.syncs[k]
	if err := ps.w.write(ps.raw[:s.raw]); err != nil {
		return err
	}
	ps.syncs = ps.syncs[:copy(ps.syncs, ps.syncs[k+1:])]
	ps.shift(s.raw, s.content)
	return nil
}

// shift lets go of raw[:r] and content[:c], which are written or scanned.
func (ps *pieceStream) shift(r, c int) {
	ps.raw = ps.raw[:copy(ps.raw, ps.raw[r:])]
	ps.content = ps.content[:copy(ps.content, ps.content[c:])]
	ps.decoded -= r
	ps.scanned -= c
	ps.checked = max(ps.checked-c, 0)
	for i := range ps.syncs {
		ps.syncs[i].raw -= r
		ps.syncs[i].content -= c
	}
}

// finish writes the end of the part: the rest as it came, or the
// encoder's last line, and the line end before the next delimiter, which
// belongs to it (encodeCTE).
func (ps *pieceStream) finish() error {
	if ps.w.out == nil {
		return nil
	}
	if !ps.reencode {
		return ps.w.write(ps.raw)
	}
	if err := ps.enc.close(); err != nil {
		return err
	}
	if ps.lastRawNL && !ps.enc.lastNL {
		return ps.w.write([]byte(ps.w.lr.eol()))
	}
	return nil
}

// pieceEncoder writes a changed part's content in its transfer encoding,
// as encodeCTE does for a part held whole: quoted-printable by the
// standard writer, base64 in lines of 76 characters (57 bytes).
type pieceEncoder struct {
	w      *walker
	cte    string
	qw     *quotedprintable.Writer
	b64    [57]byte // base64: the bytes of the line not written yet
	n      int
	lastNL bool // the last byte written is a line end
}

func newPieceEncoder(w *walker, cte string) *pieceEncoder {
	e := &pieceEncoder{w: w, cte: cte}
	if cte == "quoted-printable" {
		e.qw = quotedprintable.NewWriter(qpSink{e})
	}
	return e
}

func (e *pieceEncoder) write(b []byte) error {
	switch e.cte {
	case "quoted-printable":
		_, err := e.qw.Write(b)
		return err
	case "base64":
		for len(b) > 0 {
			if e.n == len(e.b64) { // a full line, and more follows
				if err := e.base64Line(); err != nil {
					return err
				}
			}
			k := copy(e.b64[e.n:], b)
			e.n, b = e.n+k, b[k:]
		}
		return nil
	}
	return e.out(b)
}

// close writes what the encoder holds: base64's last line, and its line
// end even when it is empty, as wrapBase64 does.
func (e *pieceEncoder) close() error {
	switch e.cte {
	case "quoted-printable":
		return e.qw.Close()
	case "base64":
		return e.base64Line()
	}
	return nil
}

func (e *pieceEncoder) base64Line() error {
	var line [76]byte
	n := base64.StdEncoding.EncodedLen(e.n)
	base64.StdEncoding.Encode(line[:n], e.b64[:e.n])
	e.n = 0
	if err := e.out(line[:n]); err != nil {
		return err
	}
	return e.out([]byte(e.w.lr.eol()))
}

func (e *pieceEncoder) out(b []byte) error {
	if len(b) > 0 {
		e.lastNL = b[len(b)-1] == '\n'
	}
	return e.w.write(b)
}

// qpSink takes the quoted-printable writer's output, in CRLF lines, and
// writes it with the message's line ends. The writer hands over a line
// with its line end in one call.
type qpSink struct{ e *pieceEncoder }

func (s qpSink) Write(b []byte) (int, error) {
	n := len(b)
	if s.e.w.lr.eol() == "\n" {
		var buf [80]byte
		b = crlfToLF(append(buf[:0], b...))
	}
	return n, s.e.out(b)
}
