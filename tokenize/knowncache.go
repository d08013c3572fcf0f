package tokenize

import (
	"sync"
	"sync/atomic"

	"github.com/tokenproxy/tokenproxy/address"
)

// knownCache maps normalized addresses to their tokens, so Tokenize of a
// known customer skips the HMAC and the read transaction. It is coherent
// because this process alone writes the map (bbolt's flock), or, on a
// shared store, because other nodes' changes arrive through the store's
// watch and the map answers from it only while the store is fresh
// (Freshness): creations add entries, an erased or changed token drops
// its entry, renames update the entry. It is bounded; when full it starts
// over, which costs only look-ups.
type knownCache struct {
	mu      sync.RWMutex
	m       map[address.Address]*knownEntry
	byLocal map[string]address.Address // token → its address's entry, to drop one entry
	max     int

	hits, misses atomic.Uint64 // Tokenize answered from the cache or not
}

type knownEntry struct {
	local    string
	version  uint32
	nameTag  [8]byte
	lastSeen int64 // as last stored or queued, for the last-seen throttle
}

func newKnownCache(max int) *knownCache {
	return &knownCache{m: make(map[address.Address]*knownEntry), byLocal: make(map[string]address.Address), max: max}
}

func (c *knownCache) get(a address.Address) (knownEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[a]
	var out knownEntry
	if ok {
		out = *e
	}
	c.mu.RUnlock()
	return out, ok
}

func (c *knownCache) put(a address.Address, e knownEntry) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.reset()
	}
	if old, ok := c.m[a]; ok && old.local != e.local {
		delete(c.byLocal, old.local)
	}
	c.m[a] = &e
	c.byLocal[e.local] = a
	c.mu.Unlock()
}

// touched records a queued last-seen time, so the next use within the
// granularity does not queue it again.
func (c *knownCache) touched(a address.Address, at int64) {
	c.mu.Lock()
	if e, ok := c.m[a]; ok {
		e.lastSeen = at
	}
	c.mu.Unlock()
}

// drop removes the entry of token local, if any: on a shared store every
// other node's change to one token (an erasure, a rename, a last-seen
// flush) would otherwise empty the whole cache.
func (c *knownCache) drop(local string) {
	c.mu.Lock()
	if a, ok := c.byLocal[local]; ok {
		delete(c.m, a)
		delete(c.byLocal, local)
	}
	c.mu.Unlock()
}

func (c *knownCache) clear() {
	c.mu.Lock()
	c.reset()
	c.mu.Unlock()
}

func (c *knownCache) reset() {
	c.m = make(map[address.Address]*knownEntry)
	c.byLocal = make(map[string]address.Address)
}

func (c *knownCache) hit()  { c.hits.Add(1) }
func (c *knownCache) miss() { c.misses.Add(1) }
