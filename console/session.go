package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Session limits. A session also ends after maxSessionAge whatever its
// use, and the table is bounded: past maxSessions the least recently
// used session ends (sign-in is audited on refusal and rate-limited, so
// only principals can fill it).
const (
	sessionCookie = "__Host-tpconsole" // RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain
	signinCookie  = "__Host-tpsignin"  // the sign-in form's CSRF token (double submit)
	maxSessionAge = 12 * time.Hour
	maxSessions   = 1000
)

// session is one signed-in principal in one browser. The subject an
// officer looked up is held here, in memory only, so that export and
// erase do not need the address again in a page; it goes with the session.
type session struct {
	id        string
	principal string
	csrf      string
	created   time.Time
	lastUsed  time.Time

	subject   string // the address of the last lookup, or ""
	downloads map[string]download
}

// download is an export waiting for its one fetch.
type download struct {
	name        string
	body        []byte
	contentType string // "" for a subject export (JSON)
}

// sessions is the in-memory session table.
type sessions struct {
	mu   sync.Mutex
	idle time.Duration
	now  func() time.Time
	byID map[string]*session
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, now: now, byID: map[string]*session{}}
}

// randomID is 256 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start opens a session for principal.
func (s *sessions) start(principal string) *session {
	now := s.now()
	ss := &session{id: randomID(), principal: principal, csrf: randomID(), created: now, lastUsed: now,
		downloads: map[string]download{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if len(s.byID) >= maxSessions {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.lastUsed.Before(oldest.lastUsed) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[ss.id] = ss
	return ss
}

// get returns the live session of a request and marks it used; expired
// says a session cookie was sent but its session has ended.
func (s *sessions) get(r *http.Request) (ss *session, expired bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss = s.byID[c.Value]
	if ss == nil {
		return nil, true
	}
	if s.ended(ss, now) {
		delete(s.byID, ss.id)
		return nil, true
	}
	ss.lastUsed = now
	return ss, false
}

func (s *sessions) ended(ss *session, now time.Time) bool {
	return now.Sub(ss.lastUsed) >= s.idle || now.Sub(ss.created) >= maxSessionAge
}

func (s *sessions) expireLocked(now time.Time) {
	for id, ss := range s.byID {
		if s.ended(ss, now) {
			delete(s.byID, id)
		}
	}
}

// sweep drops the sessions that ended: an idle session's looked-up
// address must not stay in memory until someone signs in again.
func (s *sessions) sweep() {
	s.mu.Lock()
	s.expireLocked(s.now())
	s.mu.Unlock()
}

// end drops a session (sign-out).
func (s *sessions) end(ss *session) {
	s.mu.Lock()
	delete(s.byID, ss.id)
	s.mu.Unlock()
}

// setSubject and takeSubject hold the looked-up address between requests.
func (s *sessions) setSubject(ss *session, address string) {
	s.mu.Lock()
	ss.subject = address
	s.mu.Unlock()
}

func (s *sessions) subject(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ss.subject
}

// addDownload keeps an export for one fetch and returns its id.
func (s *sessions) addDownload(ss *session, d download) string {
	id := randomID()
	s.mu.Lock()
	ss.downloads = map[string]download{id: d} // one pending export at a time
	s.mu.Unlock()
	return id
}

// takeDownload returns an export once.
func (s *sessions) takeDownload(ss *session, id string) (download, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := ss.downloads[id]
	delete(ss.downloads, id)
	return d, ok
}

// checkCSRF compares a form's token with the session's in constant time.
func checkCSRF(want, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// cookie is a console cookie: Secure, HttpOnly, SameSite=Strict, Path=/
// (the __Host- prefix requires it); maxAge < 0 deletes it.
func cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode}
}
