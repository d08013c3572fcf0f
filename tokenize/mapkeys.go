package tokenize

import (
	"context"
	"crypto/cipher"
	"fmt"
	"time"

	"github.com/tokenproxy/tokenproxy/vault"
)

// ReloadKeys returns the keyring the map should use now: have plus the
// data key versions added to the store since (vault.Refresh through the
// node's KEK), or have itself when nothing is new. The map calls it when
// the store reports a change of its wrapped keys (KeysWatcher), so that a
// rotation on one node reaches the others without a restart; it keeps the
// key provider out of this package.
type ReloadKeys func(ctx context.Context, have *vault.Keyring) (*vault.Keyring, error)

// keyset is the map's unwrapped data keys, ready for use. It is immutable:
// UpdateKeys swaps in a new one, so a call that loaded it sees one
// consistent set (a token derived and its record sealed under keys of the
// same moment).
type keyset struct {
	ring   *vault.Keyring
	tokKey map[uint32]*hmacPool // token HMAC keys by version
	tokVer []uint32             // token key versions, newest first
	aeads  map[uint32]cipher.AEAD
	recVer uint32 // record key version new records are sealed with
}

func newKeyset(ring *vault.Keyring) (*keyset, error) {
	ks := &keyset{ring: ring, tokKey: map[uint32]*hmacPool{}, aeads: map[uint32]cipher.AEAD{}}
	vs := ring.Versions(vault.PurposeToken)
	for i := len(vs) - 1; i >= 0; i-- {
		k, _ := ring.Key(vault.PurposeToken, vs[i])
		ks.tokKey[vs[i]] = newHMACPool(k)
		ks.tokVer = append(ks.tokVer, vs[i])
	}
	for _, v := range ring.Versions(vault.PurposeRecord) {
		k, _ := ring.Key(vault.PurposeRecord, v)
		a, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		ks.aeads[v] = a
		ks.recVer = v
	}
	if len(ks.tokVer) == 0 || ks.recVer == 0 {
		return nil, fmt.Errorf("%w: keyring lacks a token or record key", vault.ErrNoKey)
	}
	return ks, nil
}

// covers reports whether ks holds every version old holds: versions are
// never removed, so a keyring without one is an older one arriving late.
func (ks *keyset) covers(old *keyset) bool {
	for v := range old.tokKey {
		if ks.tokKey[v] == nil {
			return false
		}
	}
	for v := range old.aeads {
		if ks.aeads[v] == nil {
			return false
		}
	}
	return true
}

// keys returns the data keys in use now.
func (m *Map) keys() *keyset { return m.ks.Load() }

// UpdateKeys makes the map use a keyring with more versions, safely while
// it serves: new addresses get tokens under the newest token key (known
// ones keep theirs, found under every version), new records are sealed
// under the newest record key, and a newer record key starts the
// re-encryption of the older records (on the node that leads it). A
// keyring that lacks a version the map holds is refused.
func (m *Map) UpdateKeys(ring *vault.Keyring) error {
	ks, err := newKeyset(ring)
	if err != nil {
		return err
	}
	m.ksMu.Lock()
	defer m.ksMu.Unlock()
	old := m.keys()
	if !ks.covers(old) {
		return fmt.Errorf("%w: the new keyring lacks a version the map uses", vault.ErrNoKey)
	}
	m.ks.Store(ks)
	if ks.recVer > old.recVer {
		select {
		case m.rekeyed <- struct{}{}:
		default: // one pending wake-up is enough
		}
	}
	if ks.recVer != old.recVer || ks.tokVer[0] != old.tokVer[0] {
		m.log.Info("data keys updated", "event", "keys_updated",
			"token_key_version", ks.tokVer[0], "record_key_version", ks.recVer)
	}
	return nil
}

// keysRetry is the pause before a failed reload (the KEK unreachable) is
// tried again without waiting for the next change.
const keysRetry = 5 * time.Second

// followKeys reloads the keyring whenever the store reports a change of
// its wrapped keys, until ctx ends. A reload that fails is retried: until
// it succeeds this node derives and seals under the versions it has,
// which other nodes still read.
func (m *Map) followKeys(ctx context.Context, changed <-chan struct{}, reload ReloadKeys) {
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changed:
			if !ok {
				return
			}
		case <-retry:
		}
		retry = nil
		if err := m.reloadKeys(ctx, reload); err != nil && ctx.Err() == nil {
			m.log.Error("data keys changed in the store but could not be loaded; retrying",
				"event", "keys_reload_error", "err", err)
			retry = time.After(keysRetry)
		}
	}
}

func (m *Map) reloadKeys(ctx context.Context, reload ReloadKeys) error {
	have := m.keys().ring
	ring, err := reload(ctx, have)
	if err != nil || ring == have {
		return err
	}
	return m.UpdateKeys(ring)
}
