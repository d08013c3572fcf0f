package attach

import (
	"errors"
	"fmt"

	"github.com/tokenproxy/tokenproxy/rewrite/pdf"
)

// pdfMember reads a PDF found in an archive or document for addresses
// (rewrite/pdf), as the MIME walker reads an attached one: a PDF is never
// rewritten. One naming nobody is kept as it is (errPass); inbound, one
// naming a customer follows the PDF policy: strip (the whole attachment
// that holds it), refuse, or pass, which refuses too: no address may
// pass. Elsewhere (the leak guard) the error of Options.PDF is returned as
// it is. A PDF that cannot be read is the unreadable kind.
func (r *Rewriter) pdfMember(b *budget, data []byte) error {
	left := b.lim.MaxExpandedBytes - b.expanded
	if left <= 0 {
		return fmt.Errorf("%w: a PDF past the expanded-bytes budget", ErrLimit)
	}
	_, err := pdf.Scan(data, pdf.Limits{MaxDecodedBytes: left}, r.opts.PDF)
	switch {
	case err == nil:
		return errPass
	case errors.Is(err, pdf.ErrLimit):
		return fmt.Errorf("%w: %w", ErrLimit, err)
	case errors.Is(err, pdf.ErrUnreadable):
		return r.unreadable()
	case !r.opts.Enforce:
		return err
	}
	if a := r.action(KindPDF); a == Strip {
		return errStrip
	}
	return fmt.Errorf("%w: a PDF naming a customer address (PDFs are not rewritten)", ErrRefused)
}
