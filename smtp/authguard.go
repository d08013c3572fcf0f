package smtp

import (
	"net/netip"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// errAuthLockedOut answers AUTH from a client or for an account locked out
// after repeated failures, and AUTH that waited too long for a password
// check. RFC 4954 §6: 454 4.7.0 "Temporary authentication failure": the
// client may try again later; the password is not checked at all, so a
// locked-out guesser learns nothing and costs no hash.
var errAuthLockedOut = &refusal{454, gosmtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure, try again later"}

// AuthGuard limits password guessing on a route: a growing delay after each
// failure, a temporary lockout per client IP and per account, and a bound
// on the password hashes computed at once (each argon2id check allocates
// its m parameter: 64 MiB for HashPassword's hashes).
type AuthGuard struct {
	// Delay is the wait after a first failure; it doubles with each further
	// failure of the client IP, up to MaxDelay. 0: no delay.
	Delay, MaxDelay time.Duration
	// IPFailures and UserFailures within Window lock out the client IP, or
	// the account (except from IPs it authenticated from), for Lockout.
	IPFailures, UserFailures int
	Window, Lockout          time.Duration
	// MemoryBudget is the memory all password checks at once may use; the
	// number of checks is MemoryBudget / the largest argon2 m of the
	// accounts, at least 2: one slot is kept for clients known good.
	MemoryBudget int64
	// Wait is how long an AUTH waits for a check slot before 454.
	Wait time.Duration
}

// DefaultAuthGuard: a guesser gets 1, 2, 4, 8 s delays and is locked out for
// 15 min after 10 failures in 15 min; an account after 30 from any IPs.
// 128 MiB: two 64 MiB argon2id checks at once.
var DefaultAuthGuard = AuthGuard{Delay: time.Second, MaxDelay: 8 * time.Second,
	IPFailures: 10, UserFailures: 30, Window: 15 * time.Minute, Lockout: 15 * time.Minute,
	MemoryBudget: 128 << 20, Wait: 5 * time.Second}

// authState is one client IP's or one account's recent failures.
type authState struct {
	failures    int
	first       time.Time // of the failures counted
	lockedUntil time.Time
}

// authLimiter is a route's AuthGuard at work; it outlives reloads.
type authLimiter struct {
	g        AuthGuard
	known    chan struct{} // the check slot of clients known good
	others   chan struct{} // every other check
	mu       sync.Mutex
	byIP     map[netip.Addr]*authState
	byUser   map[string]*authState
	goodFrom map[string]map[netip.Addr]time.Time // account → IPs it authenticated from
}

// newAuthLimiter sizes the check slots for hashes of at most maxMemKiB.
func newAuthLimiter(g AuthGuard, maxMemKiB uint32) *authLimiter {
	slots := 2
	if maxMemKiB > 0 && g.MemoryBudget > 0 {
		slots = max(2, int(g.MemoryBudget/(int64(maxMemKiB)<<10)))
	}
	return &authLimiter{g: g, known: make(chan struct{}, 1), others: make(chan struct{}, slots-1),
		byIP: map[netip.Addr]*authState{}, byUser: map[string]*authState{}, goodFrom: map[string]map[netip.Addr]time.Time{}}
}

// locked reports whether AUTH from ip for user is refused without a check.
func (l *authLimiter) locked(ip netip.Addr, user string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.byIP[ip]; st != nil && now.Before(st.lockedUntil) {
		return true
	}
	st := l.byUser[user]
	return st != nil && now.Before(st.lockedUntil) && !l.knownGoodLocked(ip, user, now)
}

func (l *authLimiter) knownGoodLocked(ip netip.Addr, user string, now time.Time) bool {
	t, ok := l.goodFrom[user][ip]
	return ok && now.Sub(t) < 24*time.Hour
}

// acquire waits for a check slot: clients known good have their own, so a
// crowd of guessers never delays them. false: none came within Wait.
func (l *authLimiter) acquire(ip netip.Addr, user string) (release func(), ok bool) {
	l.mu.Lock()
	sem := l.others
	if l.knownGoodLocked(ip, user, time.Now()) {
		sem = l.known
	}
	l.mu.Unlock()
	t := time.NewTimer(l.g.Wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
		return nil, false
	}
}

// success forgets ip's failures and remembers it as good for user.
func (l *authLimiter) success(ip netip.Addr, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byIP, ip)
	if l.goodFrom[user] == nil {
		l.goodFrom[user] = map[netip.Addr]time.Time{}
	}
	l.goodFrom[user][ip] = now
}

// failure counts a failure; it returns the delay before the reply and which
// lockouts it started ("ip", "user"). user is counted only when it names an
// account, so guessed names cannot grow the map.
func (l *authLimiter) failure(ip netip.Addr, user string, account bool, now time.Time) (delay time.Duration, lockouts []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	st := count(l.byIP, ip, now, l.g.Window)
	if st.failures >= l.g.IPFailures && l.g.IPFailures > 0 {
		st.lockedUntil, lockouts = now.Add(l.g.Lockout), append(lockouts, "ip")
	}
	if account {
		us := count(l.byUser, user, now, l.g.Window)
		if us.failures >= l.g.UserFailures && l.g.UserFailures > 0 {
			us.lockedUntil, lockouts = now.Add(l.g.Lockout), append(lockouts, "user")
		}
	}
	delay = l.g.Delay
	for i := 1; i < st.failures && delay < l.g.MaxDelay; i++ {
		delay *= 2
	}
	return min(delay, max(l.g.MaxDelay, l.g.Delay)), lockouts
}

// count adds a failure to key's state, starting over once Window passed.
func count[K comparable](m map[K]*authState, key K, now time.Time, window time.Duration) *authState {
	st := m[key]
	if st == nil || now.Sub(st.first) > window && !now.Before(st.lockedUntil) {
		st = &authState{first: now}
		m[key] = st
	}
	st.failures++
	return st
}

// sweepLocked drops states past their window and lockout, so the maps
// stay as small as the clients failing now.
func (l *authLimiter) sweepLocked(now time.Time) {
	if len(l.byIP) < 1024 {
		return
	}
	for k, st := range l.byIP {
		if now.Sub(st.first) > l.g.Window && !now.Before(st.lockedUntil) {
			delete(l.byIP, k)
		}
	}
}
