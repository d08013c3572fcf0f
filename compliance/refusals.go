package compliance

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// Limits of refused API calls. A client past refusalLimit refusals in a
// window gets 429 without its credentials being checked (RFC 6585 section
// 4), until the window ends: guessing bearer tokens costs a window per
// refusalLimit guesses. maxRefusalClients bounds the table; clients past it
// share one entry, so a spread-out attack is still counted and limited.
const (
	refusalWindow     = time.Minute
	refusalLimit      = 20
	maxRefusalClients = 10000
	overflowClient    = "other"
)

// refusals counts refused API calls (not HTTPS, unauthenticated, missing
// role, rate-limited) per client and window, and audits them as
// aggregates: the first refusal of each actor (a principal, or "unknown")
// in a window is written at once, so an attempt shows in the trail without
// delay; the rest of the window is one record per actor with its count,
// written when the window ends. One synced record
// per refusal would let anyone grow the trail and load its disk.
type refusals struct {
	mu      sync.Mutex
	now     func() time.Time
	after   func(time.Duration, func())
	write   func(context.Context, audit.Record)
	clients map[string]*refusalWindowState
}

// refusalWindowState is one client's current window.
type refusalWindowState struct {
	start   time.Time
	total   int                       // refusals in the window
	pending map[string]map[string]int // refusals not yet audited: actor → "operation/why" → count
}

func newRefusals(write func(context.Context, audit.Record)) *refusals {
	return &refusals{now: time.Now, after: afterFunc, write: write, clients: map[string]*refusalWindowState{}}
}

// afterFunc runs f once after d, recovering a panic so an audit hiccup
// never ends the process (STYLE.md habit 9).
func afterFunc(d time.Duration, f func()) {
	time.AfterFunc(d, func() {
		defer func() { _ = recover() }()
		f()
	})
}

// limited reports whether client is past the limit in its current window.
func (r *refusals) limited(client string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.clients[r.key(client)]
	return ok && r.now().Sub(w.start) < refusalWindow && w.total >= refusalLimit
}

// note counts one refusal of client (actor as the audit knows it). It
// writes the window's first refusal at once and opens the window's timer.
func (r *refusals) note(ctx context.Context, client, actor, op, why string) {
	r.mu.Lock()
	key := r.key(client)
	w, ok := r.clients[key]
	if !ok {
		w = &refusalWindowState{start: r.now(), pending: map[string]map[string]int{}}
		r.clients[key] = w
		r.after(refusalWindow, func() { r.flush(key, w) })
	}
	w.total++
	counts, seen := w.pending[actor]
	first := !seen
	if first {
		w.pending[actor] = map[string]int{}
	} else {
		counts[op+"/"+why]++
	}
	r.mu.Unlock()
	if first {
		r.write(ctx, refusalRecord(key, actor, map[string]int{op + "/" + why: 1}))
	}
}

// key is the table key of a client: itself, or the shared overflow entry
// once the table is full.
func (r *refusals) key(client string) string {
	if _, ok := r.clients[client]; ok || len(r.clients) < maxRefusalClients {
		return client
	}
	return overflowClient
}

// flush ends a client's window, writing one record per actor for the
// refusals not yet audited.
func (r *refusals) flush(key string, w *refusalWindowState) {
	r.mu.Lock()
	if r.clients[key] == w {
		delete(r.clients, key)
	}
	pending := w.pending
	w.pending = map[string]map[string]int{}
	r.mu.Unlock()
	for actor, counts := range pending {
		if len(counts) > 0 {
			r.write(audit.WithActor(context.Background(), actor), refusalRecord(key, actor, counts))
		}
	}
}

// flushAll ends every open window: Service.Close at shutdown, and tests.
func (r *refusals) flushAll() {
	r.mu.Lock()
	open := make(map[string]*refusalWindowState, len(r.clients))
	for k, w := range r.clients {
		open[k] = w
	}
	r.mu.Unlock()
	for k, w := range open {
		r.flush(k, w)
	}
}

// refusalRecord is the aggregate record of refusals by "operation/why".
func refusalRecord(client, actor string, counts map[string]int) audit.Record {
	kinds := make([]string, 0, len(counts))
	n := 0
	for k, c := range counts {
		kinds = append(kinds, k+"="+strconv.Itoa(c))
		n += c
	}
	sort.Strings(kinds)
	return audit.Record{Event: audit.ComplianceRefused, Actor: actor, Outcome: "refused", Count: n,
		Detail: map[string]string{"client": client, "refusals": strings.Join(kinds, ",")}}
}

// clientOf is the client a request's refusals are counted for: its remote
// IP (the API is served directly, not behind a proxy that would hide it).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
