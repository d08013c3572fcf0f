package smtp

import "io"

// prechecker is a rewrite's destination that can ask the downstream
// transaction, before the message's new tokens are committed, whether the
// next hop can take the message (downstream.Txn.Precheck): a refusal we
// can foresee (SMTPUTF8 or 8BITMIME missing) then leaves nothing behind
// (DESIGN.md invariant 4).
type prechecker interface{ precheck() error }

func precheck(dst any) error {
	if p, ok := dst.(prechecker); ok {
		return p.precheck()
	}
	return nil
}

// precheck asks the transaction about the message held; a message already
// streaming was checked by its DATA before its first byte went out.
func (o *relayOutput) precheck() error {
	if o.pw != nil || o.s.txn == nil {
		return nil
	}
	var held []byte
	if o.held != nil {
		held = *o.held
	}
	return o.s.txn.Precheck(held, true)
}

// precheckSpooled asks the transaction about a sealed message's header
// (its first 64 KiB, where the header ends) before its tokens are
// committed: the seal's own fields are ASCII, so the rewritten header
// decides whether the hop must offer SMTPUTF8.
func (s *session) precheckSpooled(sp *spool) error {
	if s.txn == nil {
		return nil
	}
	r, err := sp.Reader()
	if err != nil {
		return err
	}
	head, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return err
	}
	return s.txn.Precheck(head, false)
}
