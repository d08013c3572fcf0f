package compliance

import (
	"sync"
	"time"
)

// resolveGuard is the bulk-resolution guard: at most max resolutions per
// actor in any sliding hour. It is in memory: a restart (an operator's
// act, itself visible in the audit trail) starts the window afresh.
type resolveGuard struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	seen   map[string][]time.Time // per actor, oldest first
}

func newResolveGuard(max int) *resolveGuard {
	return &resolveGuard{max: max, window: time.Hour, now: time.Now, seen: map[string][]time.Time{}}
}

// allow counts a resolution by actor, or refuses it when the window is
// full. Refused attempts are not counted.
func (g *resolveGuard) allow(actor string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	times := g.seen[actor]
	i := 0
	for i < len(times) && now.Sub(times[i]) >= g.window {
		i++
	}
	times = times[i:]
	if len(times) >= g.max {
		g.seen[actor] = times
		return false
	}
	g.seen[actor] = append(times, now)
	return true
}

// setMax changes the limit (configuration reload).
func (g *resolveGuard) setMax(max int) {
	g.mu.Lock()
	g.max = max
	g.mu.Unlock()
}

// used returns how many resolutions actor made in the last hour, and the
// limit.
func (g *resolveGuard) used(actor string) (n, max int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, t := range g.seen[actor] {
		if now.Sub(t) < g.window {
			n++
		}
	}
	return n, g.max
}
