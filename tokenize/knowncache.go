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
// (Freshness): creations add entries, erasures clear the cache, renames
// update the entry. It is bounded; when full it starts over, which costs
// only look-ups.
type knownCache struct {
	mu  sync.RWMutex
	m   map[address.Address]*knownEntry
	max int

	hits, misses atomic.Uint64 // Tokenize answered from the cache or not
}

type knownEntry struct {
	local    string
	version  uint32
	nameTag  [8]byte
	lastSeen int64 // as last stored or queued, for the last-seen throttle
}

func newKnownCache(max int) *knownCache {
	return &knownCache{m: make(map[address.Address]*knownEntry), max: max}
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
		c.m = make(map[address.Address]*knownEntry)
	}
	c.m[a] = &e
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

func (c *knownCache) clear() {
	c.mu.Lock()
	c.m = make(map[address.Address]*knownEntry)
	c.mu.Unlock()
}

func (c *knownCache) hit()  { c.hits.Add(1) }
func (c *knownCache) miss() { c.misses.Add(1) }
