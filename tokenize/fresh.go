package tokenize

import (
	"context"
	"errors"
	"time"
)

// freshWait bounds how long NewMap waits for a shared store's first
// confirmation of freshness (its watch must start and report progress):
// a command that resolves one token right after opening the map would
// otherwise be refused. A store that stays stale only makes the node not
// ready; NewMap does not fail for it.
const freshWait = 2 * time.Second

// Fresh returns nil while the map's caches are coherent with the store:
// always for a store only this process writes; for a shared store, what
// its Freshness says (a *StaleError wrapping ErrStore when not). The
// admin listener's readiness uses it.
func (m *Map) Fresh() error {
	if m.fresh == nil {
		return nil
	}
	return m.fresh.Fresh()
}

// cacheUsable reports whether Tokenize may answer from the known-address
// cache: while the store is fresh, and for StaleGrace after it stopped
// being so. An error that does not say since when leaves no grace.
func (m *Map) cacheUsable() bool {
	err := m.Fresh()
	if err == nil {
		return true
	}
	var se *StaleError
	return m.opts.StaleGrace > 0 && errors.As(err, &se) && time.Since(se.Since) < m.opts.StaleGrace
}

// awaitFresh waits up to freshWait for a shared store to become fresh.
func (m *Map) awaitFresh(ctx context.Context) {
	if m.fresh == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, freshWait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for m.fresh.Fresh() != nil {
		select {
		case <-ctx.Done():
			m.log.Warn("token store not fresh yet; cached answers wait for it", "event", "store_stale", "err", m.fresh.Fresh())
			return
		case <-t.C:
		}
	}
}

// KnownCacheStats returns how many Tokenize calls the known-address
// cache answered (hits) and how many went to the store (misses), for the
// metrics.
func (m *Map) KnownCacheStats() (hits, misses uint64) {
	return m.known.hits.Load(), m.known.misses.Load()
}
