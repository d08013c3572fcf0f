package rewrite

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// streamChunkBytes is how much of a streamed text part is held at a time:
// a chunk is at least this long and ends at a line end.
const streamChunkBytes = 64 << 10

// streamable reports whether a text part can be rewritten chunk by chunk
// instead of whole (issue 17, item 7: a large text part must not cost many
// times its size). That holds when three things are true:
//
//   - its charset is UTF-8 or US-ASCII, and its transfer encoding none
//     (7bit, 8bit, binary; RFC 2045 section 6.2) or quoted-printable, whose
//     lines decode one by one: a chunk that ends at a line end (a hard line
//     break) decodes to a chunk of the text;
//   - it is plain text, where an address never spans a line end (the body
//     scanner's local part and domain stop at one, percent-encoded or not),
//     so scanning each chunk finds what scanning the whole finds; HTML
//     (tags span lines; rewritten in pieces, piecestream.go), iCalendar
//     and vCard (folds) and format=flowed (RFC 3676 soft breaks) are not;
//   - the rewrite cannot make it need another transfer encoding: in a 7bit
//     part, only a direction that writes ASCII (tokens inbound; the guard
//     writes nothing) streams, since an outbound UTF-8 address turns a
//     held part into quoted-printable (encodeCTE).
//
// An unchanged chunk is written as it came, a changed one as the held part
// would be: so a part of one chunk is written exactly as when held. In a
// larger part, two things differ from holding it: a changed
// quoted-printable part is re-encoded chunk by chunk, its unchanged
// chunks kept as they came (the held part is re-encoded whole), and a
// 7bit part that carries 8-bit bytes against its label keeps them as they
// came, as an unchanged part does, instead of becoming quoted-printable.
func (w *walker) streamable(mt string, params map[string]string, cte string) bool {
	// A returned header section is rewritten as a header (display names),
	// not as lines of text (headerblock.go).
	if textKindOf(mt) != scan.TextPlain || mt == "text/rfc822-headers" || strings.EqualFold(params["format"], "flowed") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(params["charset"])) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	default:
		return false
	}
	switch strings.TrimSpace(cte) {
	case "8bit", "binary", "quoted-printable":
		return true
	case "", "7bit":
		return w.d.asciiOut
	}
	return false
}

// streamText rewrites a streamable text part chunk by chunk: each chunk is
// scanned and written before the next is read. The part is held to
// MaxTextPartBytes all the same, so a part is refused by the same rule
// whether it streams or not.
func (w *walker) streamText(h *mimeHeader, cte string) error {
	cte = strings.TrimSpace(cte)
	qp := cte == "quoted-printable"
	total, changed := 0, false
	for first := true; ; first = false {
		chunk, end, err := w.collectChunk(&total, qp)
		if err != nil {
			return err
		}
		out, ch, err := w.rewriteChunk(chunk, cte, qp)
		if err != nil {
			return err
		}
		changed = changed || ch
		if first {
			if err := w.writeHeader(h); err != nil {
				return err
			}
		}
		if err := w.write(out); err != nil {
			return err
		}
		if end {
			break
		}
	}
	if changed && w.out != nil {
		w.rep.Changed++
	}
	return nil
}

// rewriteChunk rewrites one chunk as leaf rewrites a held part: decoded,
// scanned, and re-encoded only if it changed.
func (w *walker) rewriteChunk(chunk []byte, cte string, qp bool) ([]byte, bool, error) {
	if !qp {
		return w.d.rewriteText(scan.TextPlain, chunk)
	}
	text, err := decodeCTE(cte, chunk)
	if err != nil {
		return nil, false, err
	}
	newText, changed, err := w.d.rewriteText(scan.TextPlain, text)
	if err != nil || !changed || w.out == nil {
		return chunk, changed, err
	}
	return encodeCTE(nil, cte, newText, w.lr.eol(), bytes.HasSuffix(chunk, []byte("\n"))), true, nil
}

// collectChunk reads the next chunk of a streamed part: whole lines (in
// quoted-printable, up to a hard line break) up to at least streamChunkBytes, or the rest of the part (end is set). total
// counts the part's bytes so far. The chunk is valid until the next
// collect.
func (w *walker) collectChunk(total *int, qp bool) (chunk []byte, end bool, err error) {
	raw := w.scratch[:0]
	defer func() { w.scratch = raw[:0] }()
	if *total == 0 {
		w.releaseHeld() // a new part: the previous one is written
	}
	lineStart := 0 // where the last line read starts in raw
	for len(raw) < streamChunkBytes || !chunkEnds(raw[lineStart:], qp) {
		l, err := w.lr.next()
		if err != nil {
			return raw, true, eofOK(err)
		}
		if l.delim >= 0 {
			return raw, true, nil
		}
		if *total += len(l.b); *total > w.limits.MaxTextPartBytes {
			return nil, false, fmt.Errorf("%w: text part larger than %d bytes", ErrLimit, w.limits.MaxTextPartBytes)
		}
		if len(raw) > 0 && raw[len(raw)-1] == '\n' {
			lineStart = len(raw)
		}
		raw = append(raw, l.b...)
		if err := w.reserveHeld(len(raw)); err != nil { // a long line makes a long chunk
			return nil, false, err
		}
	}
	return raw, false, nil
}

// chunkEnds reports whether a chunk may end after line: at its line end,
// and in quoted-printable only at a hard line break (RFC 2045 section 6.7
// rule 5: a line that ends in "=", white space aside, goes on).
func chunkEnds(line []byte, qp bool) bool {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return false
	}
	return !qp || !bytes.HasSuffix(bytes.TrimRight(line, " \t\r\n"), []byte("="))
}
