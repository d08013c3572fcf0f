package rewrite

import (
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
//   - its text is its bytes: no transfer encoding (7bit, 8bit, binary;
//     RFC 2045 section 6.2) and UTF-8 or US-ASCII, so a chunk of the text
//     is a chunk of the part and an unchanged chunk is written as it came;
//   - it is plain text, where an address never spans a line end (the body
//     scanner's local part and domain stop at one, percent-encoded or not),
//     so scanning each chunk finds what scanning the whole finds; HTML
//     (tags span lines), iCalendar and vCard (folds) and format=flowed
//     (RFC 3676 soft breaks) are held whole;
//   - the rewrite cannot make it need another transfer encoding: in a 7bit
//     part, only a direction that writes ASCII (tokens inbound; the guard
//     writes nothing) streams, since an outbound UTF-8 address turns a
//     held part into quoted-printable (encodeCTE).
//
// A streamed part's output is the held one's, byte for byte, with one
// exception: a 7bit part that carries 8-bit bytes against its label keeps
// them as they came, as an unchanged part does, instead of becoming
// quoted-printable when an address in it changed.
func (w *walker) streamable(mt string, params map[string]string, cte string) bool {
	if textKindOf(mt) != scan.TextPlain || strings.EqualFold(params["format"], "flowed") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(params["charset"])) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	default:
		return false
	}
	switch strings.TrimSpace(cte) {
	case "8bit", "binary":
		return true
	case "", "7bit":
		return w.d.asciiOut
	}
	return false
}

// streamText rewrites a streamable text part chunk by chunk: each chunk is
// scanned and written (as it came, if nothing in it changed) before the
// next is read. The part is held to MaxTextPartBytes all the same, so a
// part is refused by the same rule whether it streams or not.
func (w *walker) streamText(h *mimeHeader) error {
	total, changed := 0, false
	for first := true; ; first = false {
		chunk, end, err := w.collectChunk(&total)
		if err != nil {
			return err
		}
		out, ch, err := w.d.rewriteText(scan.TextPlain, chunk)
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

// collectChunk reads the next chunk of a streamed part: whole lines up to
// at least streamChunkBytes, or the rest of the part (end is set). total
// counts the part's bytes so far. The chunk is valid until the next
// collect.
func (w *walker) collectChunk(total *int) (chunk []byte, end bool, err error) {
	raw := w.scratch[:0]
	defer func() { w.scratch = raw[:0] }()
	for len(raw) < streamChunkBytes || raw[len(raw)-1] != '\n' {
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
		raw = append(raw, l.b...)
	}
	return raw, false, nil
}
