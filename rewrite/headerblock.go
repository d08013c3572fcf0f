package rewrite

import (
	"bytes"
)

// rewriteHeaderBlock rewrites the body of a text/rfc822-headers part (RFC
// 6522 section 4: the header of a returned message, in every bounce that
// does not return it whole) as the header section it is, so its address
// fields get the same display-name policy as the message's own header:
// "From: Jane Doe <jane@…>" there must not bring the name to the CRM
// (issue 17, item 6). Whatever follows the section (a body some bounces
// add anyway) is scanned as plain text.
func (w *walker) rewriteHeaderBlock(text []byte) ([]byte, bool, error) {
	var out bytes.Buffer
	sub := &walker{ctx: w.ctx, lr: newLineReader(bytes.NewReader(text), 0), d: w.d, rep: w.rep, limits: w.limits}
	defer sub.lr.release()
	sub.takeScratch()
	defer sub.releaseScratch()
	if w.out != nil {
		sub.out = bufioWriter(&out)
	}
	h := &mimeHeader{}
	err := sub.readHeader(h)
	if err == nil {
		err = sub.rewriteHeader(h)
	}
	if err == nil {
		err = sub.writeHeader(h)
	}
	if err == nil {
		err = sub.textLines()
	}
	if err == nil {
		err = sub.drain()
	}
	if err != nil || sub.out == nil {
		return text, false, err
	}
	if err := sub.out.Flush(); err != nil {
		return nil, false, err
	}
	return out.Bytes(), !bytes.Equal(out.Bytes(), text), nil
}
