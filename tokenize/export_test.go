package tokenize

import "github.com/tokenproxy/tokenproxy/address"

// Hooks for the external tests of this package (package tokenize_test),
// which open the map on real stores and so cannot be internal: the
// backends import this package.

// FlushLastSeen writes pending last-seen times now.
func (m *Map) FlushLastSeen() error { return m.touch.flush() }

// DecodeOutbox decodes a stored outbox entry.
func (m *Map) DecodeOutbox(ref string, v []byte) (Change, error) { return m.outbox.decode(ref, v) }

// SetOutboxPending overrides the outbox's backlog count.
func (m *Map) SetOutboxPending(n int64) { m.outbox.pending.Store(n) }

// OutboxLimit is the backlog at which creation is refused.
const OutboxLimit = outboxLimit

// RecoveryMargin widens the outbox's start-up look-back.
const RecoveryMargin = recoveryMargin

// RecordKeyVersion is the record key version a stored record is sealed with.
func RecordKeyVersion(v []byte) (uint32, error) {
	r, err := decodeLive(v)
	if err != nil {
		return 0, err
	}
	return r.keyVersion, nil
}

// SealedOf is the ciphertext of a stored record.
func SealedOf(v []byte) ([]byte, error) {
	r, err := decodeLive(v)
	if err != nil {
		return nil, err
	}
	return r.sealed, nil
}

// RecordFor seals a record for address as creation would, at the
// shortest token length, for bulk loads that bypass Tokenize.
func (m *Map) RecordFor(addr string) (local string, value []byte, err error) {
	a, err := address.Normalize(addr, m.opts.LocalCase)
	if err != nil {
		return "", nil, err
	}
	vm := m.macs(a)[0]
	local = m.opts.Format.Local(vm.version, vm.mac, m.opts.Format.Length)
	rec := &record{created: 1, lastSeen: 1, mac: vm.mac}
	m.seal(rec, local, a.String(), "")
	return local, rec.encode(), nil
}

// The outbox's own errors.
var (
	ErrOutboxStopped = errOutboxStopped
	ErrOutboxFull    = errOutboxFull
)
