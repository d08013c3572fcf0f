package smtp

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
