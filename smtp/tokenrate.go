package smtp

import (
	"net/netip"
	"sync"
	"time"
)

// Limits on the new tokens of the inbound route (issue 18, item 1): one
// message names at most rewrite.limits.max_new_tokens new customers, and
// inbound.new_token_rate bounds the new tokens created per minute, per
// client network and in all. Without them anyone on the internet could
// grow the map and the audit trail at will. Known addresses never count.
const (
	limitPerMessage = "per_message"
	limitPerIP      = "per_ip"
	limitTotal      = "total"
)

// NewTokenRate is inbound.new_token_rate: new tokens per minute.
type NewTokenRate struct {
	PerIP int // per client network (an IPv4 address, an IPv6 /64); 0: unlimited
	Total int // over all clients; 0: unlimited
}

// tokenRate counts new tokens in fixed one-minute windows. A fixed window
// lets at most twice the rate through around a window's end, which is
// enough to bound growth and needs one counter per client network; the
// map of counters holds only networks that created a token this minute,
// at most Total of them, so a client cannot grow it.
type tokenRate struct {
	rate NewTokenRate
	now  func() time.Time

	mu     sync.Mutex
	window int64 // the minute the counts are for (Unix minutes)
	total  int
	byNet  map[netip.Prefix]int
}

func newTokenRate(r NewTokenRate, now func() time.Time) *tokenRate {
	if now == nil {
		now = time.Now
	}
	return &tokenRate{rate: r, now: now, byNet: map[netip.Prefix]int{}}
}

// take counts n new tokens for the client at ip and returns "", or, when
// that would exceed a limit, the limit's name (limitPerIP, limitTotal)
// and counts nothing.
func (r *tokenRate) take(ip netip.Addr, n int) string {
	if n <= 0 {
		return ""
	}
	net := clientNet(ip)
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.now().Unix() / 60; w != r.window {
		r.window, r.total = w, 0
		clear(r.byNet)
	}
	switch {
	case r.rate.Total > 0 && r.total+n > r.rate.Total:
		return limitTotal
	case r.rate.PerIP > 0 && r.byNet[net]+n > r.rate.PerIP:
		return limitPerIP
	}
	r.total += n
	r.byNet[net] += n
	return ""
}

// clientNet is what one client is counted as: its IPv4 address, or the
// /64 of its IPv6 address (a site gets a /64 and may use any address of
// it, RFC 4291 §2.5.1).
func clientNet(ip netip.Addr) netip.Prefix {
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// newTokenLimit logs and counts a message refused by a limit on new
// tokens: the limit and the count only, never an address.
func (s *session) newTokenLimit(limit string, newTokens int) {
	s.r.opts.Metrics.NewTokenLimit(limit)
	s.log.Warn("new tokens over a limit", "event", "new_token_limit", "ref", s.ref(), "limit", limit,
		"new_tokens", newTokens)
}
