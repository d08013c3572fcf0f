package tokenize

import (
	"context"
	"fmt"

	"github.com/tokenproxy/tokenproxy/address"
)

// Creator is implemented by a store that can create a token in one round
// trip, without reading first (etcdstore: one Txn, If the token's key was
// never created Then put the record and the outbox entry Else get the key).
// Without it, a new address costs a look-up (View) and then a commit whose
// compares repeat what the look-up saw.
type Creator interface {
	// CreateToken commits value under local, and outbox (unless nil) as a
	// new outbox entry, in one durable commit, if and only if local and
	// every token in absent have no value. Otherwise it writes nothing,
	// reports created false and returns local's value (nil if local has
	// none). Like Update, a commit whose outcome was unknown is retried:
	// it then finds its own value present.
	CreateToken(ctx context.Context, local string, absent []string, value, outbox []byte) (created bool, present []byte, err error)
}

// tokenizeFast is Tokenize of an address the known-address cache does not
// answer, on a Creator: the token is created at its first length under the
// newest token key where that is free, with no look-up before. Under an
// older token key the address has no token exactly when that key's first
// length is free (probe: the first empty length ends the search), so the
// commit requires those absent too. It reports done false, having written
// nothing, when it cannot decide alone: an older key's first length in
// use (the address's old token, or another's), or a first length that
// holds a tombstone or another address's token (an erased subject, or a
// collision): the probe of the full path decides. The contract is
// Tokenize's: one token per address, and exactly one creation record,
// also when nodes create the same address at once (one commit finds the
// key present and returns the token it holds).
func (m *Map) tokenizeFast(ctx context.Context, a address.Address, original, name string) (Issued, bool, error) {
	c, ok := m.store.(Creator)
	if !ok {
		return Issued{}, false, nil
	}
	if _, cached := m.known.get(a); cached && m.cacheUsable() {
		return Issued{}, false, nil // existing answers it from the cache
	}
	if err := m.outbox.ready(ctx); err != nil {
		return Issued{}, true, err
	}
	macs := m.macs(a)
	cur, f := macs[0], m.opts.Format
	local := f.Local(cur.version, cur.mac, f.Length)
	var older []string
	for _, vm := range macs[1:] {
		older = append(older, f.Local(vm.version, vm.mac, f.Length))
	}
	at := m.opts.Now()
	rec := &record{created: at.Unix(), lastSeen: at.Unix(), mac: cur.mac, nameTag: m.nameTag(cur.version, name)}
	m.seal(rec, local, original, name)
	entry, err := m.outbox.encoded(outboxEntry{Event: EventCreated, Token: local, Actor: m.outbox.actor(ctx), At: at})
	if err != nil {
		return Issued{}, true, fmt.Errorf("%w: create token: %w", ErrStore, err)
	}
	created, present, err := c.CreateToken(ctx, local, older, rec.encode(), entry)
	if err != nil {
		return Issued{}, true, fmt.Errorf("%w: create token: %w", ErrStore, err)
	}
	if created {
		m.known.miss()
		m.outbox.added(1)
		m.remember(a, local, cur.version, name)
		return Issued{Local: local, Address: f.Address(local), New: true}, true, nil
	}
	held, err := decodeLive(present)
	if err != nil || held.mac != cur.mac {
		// Nothing there (an older key's first length is in use), a
		// tombstone, another address, or damage: the full path says which.
		return Issued{}, false, nil
	}
	m.known.miss()
	e := knownEntry{local: local, version: cur.version, nameTag: held.nameTag, lastSeen: held.lastSeen}
	m.known.put(a, e)
	iss, err := m.knownToken(ctx, a, e, name)
	return iss, true, err
}

// encoded is an outbox entry as the store keeps it; nil without an
// auditor, as put stores none then.
func (o *outbox) encoded(e outboxEntry) ([]byte, error) {
	if o.audit == nil {
		return nil, nil
	}
	return e.encode()
}
