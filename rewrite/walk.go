package rewrite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// walker walks one message's MIME tree once, in one direction.
type walker struct {
	ctx    context.Context
	lr     *lineReader
	out    *bufio.Writer // nil in guard mode: scan only
	d      *direction
	rep    *Report
	limits Limits
	// scratch holds the body collect returned last; each body is written
	// before the next is collected, so one buffer serves a whole walk.
	scratch []byte
	// headers are reused per nesting level: a level is done with its
	// header before its next sibling is read.
	headers []*mimeHeader
	// budget bounds what parts held whole take (nil: the guard's walks);
	// reserved is what this walker's current held part has of it.
	budget   *heldBudget
	reserved int64
}

func (w *walker) header(depth int) *mimeHeader {
	for len(w.headers) <= depth {
		w.headers = append(w.headers, &mimeHeader{})
	}
	return w.headers[depth]
}

// scratchPool keeps body buffers between messages; very large ones are
// dropped rather than kept alive.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

func (w *walker) takeScratch() {
	w.scratch = (*scratchPool.Get().(*[]byte))[:0]
}

func (w *walker) releaseScratch() {
	if cap(w.scratch) <= 1<<20 {
		b := w.scratch[:0]
		scratchPool.Put(&b)
	}
	w.scratch = nil
}

func (rw *Rewriter) walk(ctx context.Context, src io.Reader, dst io.Writer, d *direction, rep *Report) error {
	w := &walker{ctx: ctx, lr: newLineReader(src, rw.opts.Limits.MaxMessageBytes), d: d, rep: rep, limits: rw.opts.Limits}
	defer w.lr.release()
	if !d.guard {
		w.budget = rw.held
		defer w.releaseHeld()
	}
	w.takeScratch()
	defer w.releaseScratch()
	if dst != nil {
		w.out = writerPool.Get().(*bufio.Writer)
		w.out.Reset(dst)
		defer func() {
			w.out.Reset(nil)
			writerPool.Put(w.out)
		}()
	}
	err := w.entity(0)
	if err == nil {
		err = w.drain() // bytes after the outermost part (a stray delimiter)
	}
	if err == nil && w.out != nil {
		err = w.out.Flush()
	}
	return err
}

func eofOK(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (w *walker) write(b []byte) error {
	if w.out == nil {
		return nil
	}
	_, err := w.out.Write(b)
	return err
}

// entity handles one message or body part: header, then body by type.
func (w *walker) entity(depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if depth > w.limits.MaxDepth {
		return fmt.Errorf("%w: MIME nesting deeper than %d", ErrLimit, w.limits.MaxDepth)
	}
	if w.rep.Parts++; w.rep.Parts > w.limits.MaxParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrLimit, w.limits.MaxParts)
	}
	h := w.header(depth)
	if err := w.readHeader(h); err != nil {
		return err
	}
	if err := w.rewriteHeader(h); err != nil {
		return err
	}
	mt, params := h.contentType()
	mt = untypedByName(h, mt, params) // sniff.go
	cte := strings.ToLower(h.value("content-transfer-encoding"))
	switch {
	case isUnscannable(mt, params):
		return w.unscannable(h, "encrypted content")
	case strings.HasPrefix(mt, "multipart/"):
		return w.multipart(h, params["boundary"], depth)
	case (mt == "message/rfc822" || mt == "message/global") && isIdentityCTE(cte):
		if err := w.writeHeader(h); err != nil {
			return err
		}
		if !h.ended() {
			return w.rawBody(false) // no body, or a broken one
		}
		return w.entity(depth + 1)
	case textKindOf(mt) >= 0 || strings.HasPrefix(mt, "message/"):
		return w.leaf(h, mt, params, cte, depth)
	}
	return w.attachment(h, mt, params, cte, depth) // attachment.go
}

// multipart walks the parts between the delimiters of boundary, keeping
// preamble, delimiter lines and epilogue byte for byte (RFC 2046 5.1.1).
func (w *walker) multipart(h *mimeHeader, boundary string, depth int) error {
	if err := w.writeHeader(h); err != nil {
		return err
	}
	if boundary == "" || !h.ended() {
		return w.rawBody(true) // broken structure: scanned as raw text
	}
	w.lr.push(boundary)
	level := len(w.lr.boundaries) - 1
	err := w.parts(level, depth)
	w.lr.pop()
	if err != nil {
		return err
	}
	return w.textLines() // epilogue
}

func (w *walker) parts(level, depth int) error {
	if err := w.textLines(); err != nil { // preamble
		return err
	}
	for {
		l, err := w.lr.next()
		if err != nil {
			return eofOK(err) // unterminated multipart: keep what came
		}
		if l.delim != level {
			return nil // an enclosing multipart's delimiter ends this one too
		}
		w.lr.take()
		if err := w.write(l.b); err != nil {
			return err
		}
		if l.closing {
			return nil
		}
		if err := w.entity(depth + 1); err != nil {
			return err
		}
	}
}

// rawBody copies a body up to the next delimiter unchanged. asText scans
// it as plain text first (broken structure); the guard always scans it.
func (w *walker) rawBody(asText bool) error {
	if asText {
		return w.textLines()
	}
	for {
		l, err := w.lr.next()
		if err != nil {
			return eofOK(err)
		}
		if l.delim >= 0 {
			return nil
		}
		if err := w.d.scanRaw(l.b); err != nil {
			return err
		}
		if err := w.write(l.b); err != nil {
			return err
		}
	}
}

// textLines rewrites the lines up to the next delimiter as plain text:
// preambles, epilogues, bodies of broken structure.
func (w *walker) textLines() error {
	raw, err := w.collect()
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	out, _, err := w.d.rewriteText(scan.TextPlain, raw)
	if err != nil {
		return err
	}
	return w.write(out)
}

// collect reads a body up to the next delimiter, bounded by
// MaxTextPartBytes. The result is valid until the next collect.
func (w *walker) collect() (raw []byte, err error) {
	h := newHeld(w.scratch)
	defer func() { w.scratch = h.first[:0] }()
	w.releaseHeld() // the previous part is written
	for {
		l, err := w.lr.next()
		if err != nil {
			return h.bytes(), eofOK(err)
		}
		if l.delim >= 0 {
			return h.bytes(), nil
		}
		if h.n+len(l.b) > w.limits.MaxTextPartBytes {
			return nil, fmt.Errorf("%w: text part larger than %d bytes", ErrLimit, w.limits.MaxTextPartBytes)
		}
		h.add(l.b)
		if err := w.reserveHeld(h.n); err != nil {
			return nil, err
		}
	}
}

// drain handles input left after the top-level entity.
func (w *walker) drain() error {
	for {
		l, err := w.lr.next()
		if err != nil {
			return eofOK(err)
		}
		w.lr.take()
		if err := w.d.scanRaw(l.b); err != nil {
			return err
		}
		if err := w.write(l.b); err != nil {
			return err
		}
	}
}

// unscannable applies the policy to content that cannot be scanned.
func (w *walker) unscannable(h *mimeHeader, why string) error {
	if w.d.rejectUnscannable {
		return fmt.Errorf("%w: %s", ErrUnscannable, why)
	}
	if err := w.writeHeader(h); err != nil {
		return err
	}
	return w.rawBody(false)
}

// isUnscannable: encrypted content (RFC 8551 S/MIME enveloped data, RFC
// 3156 PGP/MIME). Signed-only S/MIME (smime-type=signed-data) is also
// opaque: its content sits inside the DER.
func isUnscannable(mt string, params map[string]string) bool {
	switch mt {
	case "application/pkcs7-mime", "application/x-pkcs7-mime", "multipart/encrypted",
		"application/pgp-encrypted", "application/pkcs7-encrypted":
		return true
	}
	return false
}

func isIdentityCTE(cte string) bool {
	switch strings.TrimSpace(cte) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// textKindOf maps a media type to how its text is scanned, or -1 for
// content that is not text.
func textKindOf(mt string) scan.TextKind {
	switch {
	case mt == "text/rtf", mt == "application/rtf", mt == "application/x-rtf":
		return scan.TextRTF
	case mt == "text/html", mt == "application/xhtml+xml", mt == "text/xml", mt == "application/xml",
		strings.HasSuffix(mt, "+xml"):
		return scan.TextHTML
	case mt == "text/calendar", mt == "text/vcard", mt == "text/x-vcard", mt == "text/directory",
		mt == "application/ics", mt == "application/vcard", mt == "application/x-vcard":
		return scan.TextFolded
	case strings.HasPrefix(mt, "text/"), mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/csv", mt == "application/x-csv", mt == "application/javascript",
		mt == "application/yaml", mt == "application/x-yaml", mt == "application/mbox",
		mt == "message/delivery-status", mt == "message/disposition-notification",
		mt == "message/feedback-report", mt == "message/global-delivery-status",
		mt == "message/global-disposition-notification", mt == "text/rfc822-headers":
		return scan.TextPlain
	}
	return -1
}
