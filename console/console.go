package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// csp allows nothing inline and nothing from elsewhere: the charts are
// inline SVG drawn with presentation attributes, which CSP does not
// govern; style and script are the embedded files.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options are what the console works on.
type Options struct {
	Service *compliance.Service
	// Gatherer is the proxy's metrics registry: the overview's history
	// is sampled from its counters.
	Gatherer prometheus.Gatherer
	// Fresh reports a cluster node's freshness (etcd); nil on one node.
	Fresh func() error
	// Cluster reads the etcd cluster's members (cluster.go); nil on one
	// node.
	Cluster func(context.Context) (Cluster, error)
	// Config gives the idle timeout.
	Config policy.Console
	Log    *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Console serves the console pages. Mount it with Register; Start and
// Close run the overview's history sampler.
type Console struct {
	svc      *compliance.Service
	fresh    func() error
	cluster  func(context.Context) (Cluster, error)
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	hist     *history
	pages    map[string]*template.Template
	verifier *verifications
	// cop refuses a cross-origin form post (Sec-Fetch-Site, Origin)
	// before the CSRF token is looked at: defence in depth.
	cop *http.CrossOriginProtection

	mu         sync.Mutex
	lastVerify *verifyResult // the last verification finished in the console
}

// Mux is where Register mounts the console: the admin listener.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{svc: o.Service, fresh: o.Fresh, cluster: o.Cluster, log: o.Log, now: o.Now, pages: pages,
		sessions: newSessions(o.Config.IdleTimeout, o.Now), hist: newHistory(o.Gatherer, o.Now),
		cop: http.NewCrossOriginProtection()}
	c.verifier = newVerifications(c)
	return c, nil
}

// Start samples the metrics once a minute for the overview's charts, and
// drops ended sessions (with the subject they held) as often, until Close.
func (c *Console) Start() { c.hist.start(c.sessions.sweep) }

// Close stops the sampler and any verification under way.
func (c *Console) Close() {
	c.hist.stop()
	c.verifier.stopAll()
}

// Register mounts the console under /console/ on mux.
func (c *Console) Register(mux Mux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", c.secure(http.StripPrefix("/console/static/", http.FileServerFS(static))))
	mux.Handle("GET /console/{$}", c.secure(http.RedirectHandler("/console/overview", http.StatusSeeOther)))
	mux.Handle("GET /console/signin", c.secure(http.HandlerFunc(c.signinPage)))
	mux.Handle("POST /console/signin", c.secure(http.HandlerFunc(c.signin)))
	mux.Handle("POST /console/signout", c.page("", "signout", c.signout))

	mux.Handle("GET /console/overview", c.page("", "overview", c.overview))
	mux.Handle("GET /console/principals", c.page("", "principals", c.principals))

	mux.Handle("GET /console/audit", c.page(policy.RoleAuditor, "audit_read", c.trail))
	mux.Handle("GET /console/audit/record/{seq}", c.page(policy.RoleAuditor, "audit_read", c.record))
	mux.Handle("GET /console/audit/export", c.page(policy.RoleAuditor, "audit_read", c.trailExport))
	mux.Handle("POST /console/audit/verify", c.page(policy.RoleAuditor, "audit_verify", c.verifyStart))
	mux.Handle("GET /console/audit/verify/{id}", c.page(policy.RoleAuditor, "audit_verify", c.verifyPage))
	mux.Handle("GET /console/audit/verify/{id}/status", c.page(policy.RoleAuditor, "audit_verify", c.verifyStatus))

	mux.Handle("GET /console/subject", c.page(policy.RoleOfficer, "subject", c.subjectPage))
	mux.Handle("POST /console/subject/lookup", c.page(policy.RoleOfficer, "lookup", c.subjectLookup))
	mux.Handle("POST /console/subject/resolve", c.page(policy.RoleOfficer, "resolve", c.subjectResolve))
	mux.Handle("POST /console/subject/export", c.page(policy.RoleOfficer, "export", c.subjectExport))
	mux.Handle("GET /console/subject/download/{id}", c.page(policy.RoleOfficer, "export", c.subjectDownload))
	mux.Handle("POST /console/subject/erase", c.page(policy.RoleOfficer, "erase", c.subjectErase))

	mux.Handle("GET /console/quarantine", c.page(policy.RoleOfficer, "quarantine_list", c.quarantinePage))
	mux.Handle("POST /console/quarantine/export", c.page(policy.RoleOfficer, "quarantine_export", c.quarantineExport))
	mux.Handle("GET /console/quarantine/download/{id}", c.page(policy.RoleOfficer, "quarantine_export", c.quarantineDownload))
	mux.Handle("POST /console/quarantine/delete", c.page(policy.RoleOfficer, "quarantine_delete", c.quarantineDelete))
}

// secure sets the headers every console answer carries and refuses plain
// HTTP (the session cookie is Secure, and an address may be in a body).
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		// No console page is worth caching, and a subject page must not be
		// kept by the browser.
		hd.Set("Cache-Control", "no-store")
		if r.TLS == nil {
			c.svc.Refused(r.Context(), clientOf(r), "unknown", "console", "not_https")
			http.Error(w, "the console is served over HTTPS only", http.StatusForbidden)
			return
		}
		if err := c.cop.Check(r); err != nil {
			c.svc.Refused(r.Context(), clientOf(r), "unknown", "console", "cross_origin")
			c.errorPage(w, r, nil, http.StatusForbidden, "The form was refused: it came from another site. Nothing was done.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// request is what a page handler gets: the session, its principal, and a
// context carrying the principal as the audit actor.
type request struct {
	*http.Request
	s *session
	p policy.Principal
}

// page wraps a handler that needs a session (and role, when not ""):
// without one it redirects to the sign-in page; without the role it
// answers 403 and counts the refusal (audited); a POST without the
// session's CSRF token is refused the same way.
func (c *Console) page(role, op string, h func(http.ResponseWriter, *request)) http.Handler {
	return c.secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientOf(r)
		if c.svc.Limited(client) {
			c.svc.Refused(r.Context(), client, "unknown", "console_"+op, "rate_limited")
			c.errorPage(w, r, nil, http.StatusTooManyRequests, "Too many refused requests from this address; try again in a minute.")
			return
		}
		ss, expired := c.sessions.get(r)
		var p policy.Principal
		ok := ss != nil
		if ok {
			// A principal removed by a reload ends its sessions.
			p, ok = c.svc.Principal(ss.principal)
		}
		if !ok {
			// A page opened without a session is only sent to sign in; an
			// action posted without one is a refused call.
			if r.Method == http.MethodPost {
				c.svc.Refused(r.Context(), client, "unknown", "console_"+op, "unauthenticated")
			}
			to := "/console/signin"
			if expired {
				to += "?ended=1"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		actor := compliance.Actor(p)
		if role != "" && !compliance.HasRole(p, role) {
			c.svc.Refused(r.Context(), client, actor, "console_"+op, "role")
			c.log.Warn("console page refused", "event", "console_refused", "actor", actor, "why", "role", "page", op)
			c.errorPage(w, r, &request{r, ss, p}, http.StatusForbidden, "This page needs the "+role+" role. The attempt was recorded in the audit trail.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, formLimit)
			if !checkCSRF(ss.csrf, r.PostFormValue("csrf")) {
				c.svc.Refused(r.Context(), client, actor, "console_"+op, "csrf")
				c.log.Warn("console form refused", "event", "console_refused", "actor", actor, "why", "csrf", "page", op)
				c.errorPage(w, r, &request{r, ss, p}, http.StatusForbidden, "The form was refused: it carried no valid form token. Nothing was done. Reload the page and try again.")
				return
			}
		}
		h(w, &request{Request: r.WithContext(audit.WithActor(r.Context(), actor)), s: ss, p: p})
	}))
}

// formLimit bounds a console form's body.
const formLimit = 16 << 10

// pageData is what every page template gets.
type pageData struct {
	Title     string
	Principal string
	Roles     []string
	Auditor   bool
	Officer   bool
	CSRF      string
	Nav       string
	Body      any
}

func (c *Console) data(r *request, nav, title string, body any) pageData {
	d := pageData{Title: title, Nav: nav, Body: body}
	if r != nil && r.s != nil {
		d.Principal, d.Roles, d.CSRF = r.p.Name, r.p.Roles, r.s.csrf
		d.Auditor = compliance.HasRole(r.p, policy.RoleAuditor)
		d.Officer = compliance.HasRole(r.p, policy.RoleOfficer)
	}
	return d
}

// render executes a page into a buffer first, so a template error is a
// 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, code int, name string, d pageData) {
	t := c.pages[name]
	var b bytes.Buffer
	if t == nil {
		c.log.Error("console template missing", "event", "console_failed", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		c.log.Error("console template failed", "event", "console_failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

type errorBody struct {
	Code    int
	Status  string
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, _ *http.Request, r *request, code int, msg string) {
	c.render(w, code, "error", c.data(r, "", http.StatusText(code), errorBody{Code: code, Status: http.StatusText(code), Message: msg}))
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"utc": utc, "join": joinStrings, "pair": func(a, b chart) []chart { return []chart{a, b} },
		"size": byteSize}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := n[len("templates/") : len(n)-len(".html")]
		if base == "layout" || base == "receipt" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/receipt.html", n)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func joinStrings(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// clientOf is a request's client IP, for the refusal counts.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
