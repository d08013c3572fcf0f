package console

import (
	"net/http"

	"github.com/tokenproxy/tokenproxy/compliance"
)

type signinBody struct {
	CSRF     string
	Ended    bool
	Failed   bool
	CertName string // the principal of the client certificate sent, if any
}

// signinPage offers the bearer token field, and the client certificate
// when the browser sent one that names a principal. Its form carries a
// token matched against a cookie (double submit): the form posts before
// there is a session.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, signinBody{Ended: r.URL.Query().Get("ended") == "1"})
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, code int, b signinBody) {
	b.CSRF = randomID()
	http.SetCookie(w, cookie(signinCookie, b.CSRF, 600))
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		r2 := r.Clone(r.Context())
		r2.Header.Del("Authorization")
		if p, ok := c.svc.Identify(r2); ok {
			b.CertName = p.Name
		}
	}
	c.render(w, code, "signin", c.data(nil, "", "Sign in", b))
}

// signin checks the pasted bearer token, or the client certificate, as
// the API does, and opens a session. A failure is counted into the API's
// refusal records (audited), and a client past the limit gets 429 before
// its credentials are looked at.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	client := clientOf(r)
	if c.svc.Limited(client) {
		c.svc.Refused(r.Context(), client, "unknown", "console_signin", "rate_limited")
		w.Header().Set("Retry-After", "60")
		c.errorPage(w, r, nil, http.StatusTooManyRequests, "Too many refused requests from this address; try again in a minute.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, formLimit)
	ck, err := r.Cookie(signinCookie)
	if err != nil || !checkCSRF(ck.Value, r.PostFormValue("csrf")) {
		c.svc.Refused(r.Context(), client, "unknown", "console_signin", "csrf")
		c.renderSignin(w, r, http.StatusForbidden, signinBody{Failed: true})
		return
	}
	var ok bool
	var name string
	if token := r.PostFormValue("token"); token != "" {
		p, found := c.svc.IdentifyToken(token)
		ok, name = found, p.Name
	} else if r.PostFormValue("method") == "certificate" {
		r2 := r.Clone(r.Context())
		r2.Header.Del("Authorization")
		p, found := c.svc.Identify(r2)
		ok, name = found, p.Name
	}
	if !ok {
		c.svc.Refused(r.Context(), client, "unknown", "console_signin", "unauthenticated")
		c.renderSignin(w, r, http.StatusUnauthorized, signinBody{Failed: true})
		return
	}
	p, _ := c.svc.Principal(name)
	ss := c.sessions.start(name)
	c.log.Info("console sign-in", "event", "console_signin", "actor", compliance.Actor(p))
	http.SetCookie(w, cookie(signinCookie, "", -1))
	http.SetCookie(w, cookie(sessionCookie, ss.id, 0))
	http.Redirect(w, r, "/console/overview", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *request) {
	c.sessions.end(r.s)
	c.log.Info("console sign-out", "event", "console_signout", "actor", compliance.Actor(r.p))
	http.SetCookie(w, cookie(sessionCookie, "", -1))
	http.Redirect(w, r.Request, "/console/signin", http.StatusSeeOther)
}
