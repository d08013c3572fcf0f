package smtp

import (
	"io"

	"github.com/tokenproxy/tokenproxy/rewrite"
)

// prechecker is a rewrite's destination that can ask the downstream
// transaction, before the message's new tokens are committed, whether the
// next hop can take the message (downstream.Txn.Precheck): a refusal we
// can foresee (SMTPUTF8 or 8BITMIME missing) then leaves nothing behind
// (DESIGN.md invariant 4).
type prechecker interface {
	precheck(rep *rewrite.Report) error
}

func precheck(dst any, rep *rewrite.Report) error {
	if p, ok := dst.(prechecker); ok {
		return p.precheck(rep)
	}
	return nil
}

// partHeadersUTF8 tells the transaction, not yet streaming, that the
// rewritten message has a header with UTF-8 somewhere, a MIME part's
// maybe, which the transaction's own look at the message header misses.
func (s *session) partHeadersUTF8(rep *rewrite.Report) {
	if rep != nil && rep.HeaderUTF8 {
		s.txn.PartHeadersUTF8()
	}
}

// precheck asks the transaction about the message held; a message already
// streaming had its header checked by its DATA before its first byte went
// out, and is held whole instead where its body matters (Write).
func (o *relayOutput) precheck(rep *rewrite.Report) error {
	switch {
	case o.s.txn == nil:
		return nil
	case o.pw != nil:
		// The transaction is the DATA goroutine's now: the answer was
		// asked before it started (stream).
		if rep != nil && rep.HeaderUTF8 {
			return o.utf8Refusal
		}
		return nil
	}
	o.s.partHeadersUTF8(rep)
	return o.s.txn.Precheck(o.message(), true)
}

// precheckSpooled asks the transaction about a sealed message before its
// tokens are committed: its header (the first 64 KiB, where the header
// ends) and the report's part headers, or the whole message for a hop
// without 8BITMIME. The seal's own fields are ASCII, so the rewritten
// message decides.
func (s *session) precheckSpooled(sp *spool, rep *rewrite.Report) error {
	if s.txn == nil {
		return nil
	}
	s.partHeadersUTF8(rep)
	if s.txn.Settled() {
		return nil // no need to read the spool (a copy of up to 64 KiB per sealed message)
	}
	r, err := sp.Reader()
	if err != nil {
		return err
	}
	// A hop without 8BITMIME reads the whole message before sending
	// (downstream.Txn.WholeFirst): its body is checked too.
	whole := s.txn.WholeFirst()
	if !whole {
		r = io.LimitReader(r, 64<<10)
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return s.txn.Precheck(msg, whole)
}
