package rewrite

import (
	"errors"
	"fmt"

	"github.com/tokenproxy/tokenproxy/rewrite/pdf"
)

// PDF attachments (issue 17, item 2). A PDF is read for addresses
// (rewrite/pdf) but never rewritten: a token is longer than the address
// it replaces and the document's fonts may lack its characters. Until the
// attachment policy can strip a part (issue 17, item 5, another branch),
// a PDF naming a customer address is refused with ErrUnscannable, and one
// without passes byte for byte. The reading is the leak guard's: the
// inbound rewrite passes the PDF as it came and the guard, which reads
// everything that leaves, refuses it; outbound, a PDF quoting tokens
// passes as the CRM wrote it.

// maxPDFBytes bounds the raw size of a PDF part that is read; a larger
// one streams unread, as before (reading it whole would cost its size
// in memory). maxPDFDecodedBytes bounds its streams once decoded: a
// deflate bomb is refused (ErrLimit).
const (
	maxPDFBytes        = 8 << 20
	maxPDFDecodedBytes = 32 << 20
)

// pdfPart handles a PDF part whose first raw bytes, if any were read to
// sniff it, are head.
func (w *walker) pdfPart(h *mimeHeader, cte string, head []byte) error {
	if !w.d.guard {
		return w.streamAfter(h, head)
	}
	raw, complete, err := w.collectHead(head, maxPDFBytes)
	if err != nil {
		return err
	}
	if !complete {
		return w.streamAfter(h, raw)
	}
	content, err := decodeCTE(cte, raw)
	if err == nil {
		_, err = pdf.Scan(content, pdf.Limits{MaxDecodedBytes: maxPDFDecodedBytes}, w.d.addr)
	}
	switch {
	case errors.Is(err, ErrLeak):
		return fmt.Errorf("%w: a PDF attachment names a customer address, and PDFs are not rewritten", ErrUnscannable)
	case errors.Is(err, pdf.ErrLimit):
		return fmt.Errorf("%w: %w", ErrLimit, err)
	case err != nil && !errors.Is(err, pdf.ErrUnreadable) && !errors.Is(err, errUndecodable):
		return err
	}
	// Unreadable (encrypted, an unknown filter): passed as before, with
	// its raw bytes checked.
	return w.streamAfter(h, raw)
}
