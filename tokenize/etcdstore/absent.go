package etcdstore

import (
	"sync"
	"time"
)

// Bounds of the absent-key memory: enough for the look-ups of a burst of
// new senders, short enough that a key created elsewhere meanwhile rarely
// costs a failed commit.
const (
	absentMax = 1 << 14
	absentTTL = time.Second
)

// absentKeys remembers keys that a View recently found absent, so that the
// first run of an Update (creating the token the View looked for) need
// not read them again: the commit compares CreateRevision == 0, which a
// stale entry fails, and the next run reads etcd. It saves one round trip
// per new token.
type absentKeys struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *absentKeys) add(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.at == nil || len(a.at) >= absentMax {
		a.at = map[string]time.Time{} // crude, but a hint loses nothing
	}
	a.at[key] = time.Now()
}

func (a *absentKeys) has(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.at[key]
	return ok && time.Since(at) < absentTTL
}

func (a *absentKeys) drop(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.at, key)
}
