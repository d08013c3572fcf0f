package rewrite

import (
	"errors"
	"fmt"

	"github.com/tokenproxy/tokenproxy/rewrite/attach"
	"github.com/tokenproxy/tokenproxy/rewrite/pdf"
)

// PDF attachments (issue 17, item 2). A PDF is read for addresses
// (rewrite/pdf) but never rewritten: a token (about 41 characters) is
// longer than nearly every address it would replace, so it fits in place
// almost never; growing a string means rewriting the file with a new
// cross-reference table, and an incremental update (ISO 32000-1 section
// 7.5.6) appends the new objects but leaves the old ones, address and
// all, in the file's bytes. And the text is drawn in fonts that are
// subsets (LibreOffice, word processors): a token's characters may have
// no glyph in them.
//
// So inbound, a PDF that names a customer follows rewrite.attachments.pdf
// (Options.Attachments.PDF): strip (the default) replaces it by a notice
// and hands the original to the quarantine; refuse and pass refuse the
// message (554 5.6.0): pass never lets an address through, it only means
// a PDF naming nobody passes, as it does under every value. A PDF that
// cannot be read (encrypted, an unknown filter, larger than max_bytes)
// follows the unreadable kind's policy. The leak guard reads every PDF
// that leaves again and refuses one naming a customer; outbound, a PDF
// quoting tokens passes as the CRM wrote it.

// A PDF part is read up to the attachment limit
// (rewrite.attachments.limits.max_bytes decoded), as an office document
// is opened; a larger one is unreadable. Its raw and decoded bytes and
// its stream buffers count against the route's held-part budget.
// Its streams decoded together are bounded by maxPDFDecodedBytes, or
// pdfDecodedPerByte times the file when that is more (text-dense PDFs
// decode to about ten times their size): a deflate bomb is refused
// (ErrLimit), a large text PDF is read.
const (
	maxPDFDecodedBytes = 32 << 20
	pdfDecodedPerByte  = 16
)

// pdfPart handles a PDF part whose first raw bytes, if any were read to
// sniff it, are head.
func (w *walker) pdfPart(h *mimeHeader, ar *attach.Rewriter, head []byte, pi partInfo) error {
	names := w.d.names
	if w.d.guard {
		names = w.d.addr
	}
	if names == nil { // outbound: as the CRM wrote it
		return w.streamAfter(h, head)
	}
	w.releaseHeld() // the previous part is written
	raw, complete, err := w.collectHead(head, int(rawSize(pi.max)))
	if err != nil {
		return err
	}
	if !complete {
		return w.unreadPDF(h, ar, raw, pi)
	}
	content, err := decodeCTE(pi.cte, raw)
	if err == nil {
		// Its raw and decoded bytes, and the buffers its streams are
		// decoded into, count against the route's held-part budget, as an
		// opened attachment's do (attachment.go).
		var hold *attachHold
		if hold, err = w.holdAttachment(len(raw) + len(content)); err == nil {
			_, err = pdf.Scan(content, pdf.Limits{MaxDecodedBytes: max(maxPDFDecodedBytes, pdfDecodedPerByte*int64(len(content))),
				Reserve: hold.reserve}, names)
			w.endHold(hold)
		}
	}
	switch {
	case errors.Is(err, ErrLeak) && w.d.guard:
		return fmt.Errorf("%w: a PDF attachment names a customer address, and PDFs are not rewritten", ErrUnscannable)
	case errors.Is(err, ErrLeak):
		return w.namingPDF(h, ar, content, pi)
	case errors.Is(err, pdf.ErrLimit):
		return fmt.Errorf("%w: %w", ErrLimit, err)
	case errors.Is(err, pdf.ErrUnreadable), errors.Is(err, errUndecodable):
		return w.unreadPDF(h, ar, raw, pi)
	case err != nil:
		return err
	}
	return w.streamAfter(h, raw) // it names nobody: byte for byte
}

// namingPDF applies rewrite.attachments.pdf to a PDF naming a customer.
func (w *walker) namingPDF(h *mimeHeader, ar *attach.Rewriter, content []byte, pi partInfo) error {
	act, err := ar.Verdict(attach.KindPDF)
	if err != nil {
		return attachErr(fmt.Errorf("%w: a PDF naming a customer address", err))
	}
	if act == attach.Strip {
		return w.writeNotice(h, pi.name, content, attach.KindPDF)
	}
	// pass: an address must not reach the CRM, and a PDF is not rewritten.
	return fmt.Errorf("%w: a PDF attachment names a customer address, and PDFs are not rewritten", ErrUnscannable)
}

// unreadPDF handles a PDF that could not be read: inbound, by the
// unreadable kind's policy; in the guard, passed with its raw bytes
// checked, as every part that cannot be read is.
func (w *walker) unreadPDF(h *mimeHeader, ar *attach.Rewriter, raw []byte, pi partInfo) error {
	if !w.d.enforce {
		return w.streamAfter(h, raw)
	}
	act, err := ar.Unopened()
	if err != nil {
		return attachErr(err)
	}
	return w.unopened(h, raw, act, attach.KindUnreadable, pi)
}
