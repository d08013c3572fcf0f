package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
)

const customer = "jane.customer@example.com"

func TestConsoleHeaders(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for _, path := range []string{"/console/signin", "/console/static/console.css"} {
		p := b.do("GET", path, nil)
		if p.code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, p.code)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": csp, "Cache-Control": "no-store", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := p.header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	p := b.do("GET", "/console/signin", nil)
	var found bool
	for _, c := range b.c.Jar.Cookies(mustURL(t, h.srv.URL)) {
		found = found || c.Name == signinCookie
	}
	if !found || !strings.Contains(p.header.Get("Set-Cookie"), "SameSite=Strict") ||
		!strings.Contains(p.header.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(p.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("sign-in cookie = %q", p.header.Get("Set-Cookie"))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConsoleSignIn(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		name  string
		form  func(csrf string) url.Values
		code  int
		where string
	}{
		{"bearer token", func(c string) url.Values { return url.Values{"csrf": {c}, "token": {"secret-alice"}} }, http.StatusSeeOther, "/console/overview"},
		{"wrong token", func(c string) url.Values { return url.Values{"csrf": {c}, "token": {"secret-mallory"}} }, http.StatusUnauthorized, ""},
		{"no token", func(c string) url.Values { return url.Values{"csrf": {c}} }, http.StatusUnauthorized, ""},
		{"no csrf", func(string) url.Values { return url.Values{"token": {"secret-alice"}} }, http.StatusForbidden, ""},
		{"no certificate", func(c string) url.Values { return url.Values{"csrf": {c}, "method": {"certificate"}} }, http.StatusUnauthorized, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := h.browser()
			p := b.do("GET", "/console/signin", nil)
			res := b.do("POST", "/console/signin", c.form(p.csrf(t)))
			if res.code != c.code || res.location != c.where {
				t.Fatalf("= %d → %q, want %d → %q\n%s", res.code, res.location, c.code, c.where, res.body)
			}
		})
	}
	// Refused sign-ins are audited as the API's refusals are.
	h.svc.Close()
	var refused int
	for _, r := range h.records() {
		if r.Event == audit.ComplianceRefused && strings.Contains(r.Detail["refusals"], "console_signin/") {
			refused += r.Count
		}
	}
	if refused != 4 {
		t.Errorf("refused sign-ins audited: %d, want 4", refused)
	}
}

func TestConsoleRoles(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		who  string
		path string
		code int
	}{
		{"sam", "/console/audit", http.StatusOK},
		{"sam", "/console/subject", http.StatusForbidden},
		{"alice", "/console/subject", http.StatusOK},
		{"alice", "/console/audit", http.StatusForbidden},
		{"otto", "/console/overview", http.StatusOK},
		{"otto", "/console/principals", http.StatusOK},
		{"otto", "/console/audit", http.StatusForbidden},
		{"otto", "/console/subject", http.StatusForbidden},
	} {
		b := h.browser()
		b.signIn(c.who)
		if p := b.do("GET", c.path, nil); p.code != c.code {
			t.Errorf("%s GET %s = %d, want %d", c.who, c.path, p.code, c.code)
		}
	}
	// Without a session: sent to sign in.
	if p := h.browser().do("GET", "/console/audit", nil); p.code != http.StatusSeeOther || p.location != "/console/signin" {
		t.Errorf("no session: %d → %q", p.code, p.location)
	}
	var samRefused bool
	for _, r := range h.records() {
		samRefused = samRefused || (r.Event == audit.ComplianceRefused && r.Actor == "principal:sam" &&
			strings.Contains(r.Detail["refusals"], "console_subject/role"))
	}
	if !samRefused {
		t.Error("the auditor's refused Subject page is not in the trail")
	}
}

func TestConsoleCSRF(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.signIn("alice")
	for _, form := range []url.Values{
		{"token": {"t1-x@relay.company.example"}, "reason": {"ticket 1"}},
		{"token": {"t1-x@relay.company.example"}, "reason": {"ticket 1"}, "csrf": {"forged"}},
	} {
		p := b.do("POST", "/console/subject/resolve", form)
		if p.code != http.StatusForbidden || !strings.Contains(p.body, "Nothing was done") {
			t.Errorf("resolve without the form token = %d\n%s", p.code, p.body)
		}
	}
	for _, r := range h.records() {
		if r.Event == audit.ComplianceResolve {
			t.Errorf("a refused form resolved: %+v", r)
		}
	}
}

func TestSessionSweep(t *testing.T) {
	h := newHarness(t)
	ss := h.con.sessions.start("alice")
	h.con.sessions.setSubject(ss, customer)
	h.clock.add(2 * time.Minute)
	h.con.hist.tick(h.con.sessions.sweep)
	h.con.sessions.mu.Lock()
	n := len(h.con.sessions.byID)
	h.con.sessions.mu.Unlock()
	if n != 0 {
		t.Errorf("%d sessions left after the idle timeout, want 0", n)
	}
}

func TestConsoleSessionExpiry(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	csrf := b.signIn("alice")
	h.clock.add(59 * time.Second)
	if p := b.do("GET", "/console/subject", nil); p.code != http.StatusOK {
		t.Fatalf("before the idle timeout: %d", p.code)
	}
	h.clock.add(61 * time.Second)
	p := b.do("POST", "/console/subject/resolve", url.Values{"csrf": {csrf}, "token": {"t1-x@relay.company.example"}, "reason": {"r"}})
	if p.code != http.StatusSeeOther || p.location != "/console/signin?ended=1" {
		t.Fatalf("after the idle timeout: %d → %q", p.code, p.location)
	}
	if p := b.do("GET", "/console/signin?ended=1", nil); !strings.Contains(p.body, "Your session ended") {
		t.Errorf("sign-in page does not say the session ended")
	}
}

// TestConsoleOfficerFlow: lookup, resolve, export and erase, each result
// with its audit record, the typed address never in a page after the
// action nor in the log.
func TestConsoleOfficerFlow(t *testing.T) {
	h := newHarness(t)
	ctx := audit.WithActor(context.Background(), "route:inbound")
	iss, err := h.m.Tokenize(ctx, customer, "Jane")
	if err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	csrf := b.signIn("alice")

	p := b.do("POST", "/console/subject/lookup", url.Values{"csrf": {csrf}, "address": {customer}, "reason": {"ticket 42"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, iss.Address) || !strings.Contains(p.body, "compliance.lookup") {
		t.Fatalf("lookup = %d\n%s", p.code, p.body)
	}
	if cc := p.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("subject page Cache-Control = %q, want no-store", cc)
	}
	noAddress(t, "lookup page", p.body)

	p = b.do("POST", "/console/subject/resolve", url.Values{"csrf": {csrf}, "token": {iss.Address}, "reason": {"ticket 42"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, customer) || !strings.Contains(p.body, "compliance.resolve") {
		t.Fatalf("resolve = %d\n%s", p.code, p.body)
	}
	p = b.do("POST", "/console/subject/resolve", url.Values{"csrf": {csrf}, "token": {iss.Address}, "reason": {"mail " + customer}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, "a reason is required") {
		t.Errorf("resolve with an address in the reason = %d", p.code)
	}

	p = b.do("POST", "/console/subject/export", url.Values{"csrf": {csrf}, "reason": {"art 15 request"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, "compliance.export") {
		t.Fatalf("export = %d\n%s", p.code, p.body)
	}
	noAddress(t, "export page", p.body)
	link := regexpFind(t, `/console/subject/download/[A-Za-z0-9_-]+`, p.body)
	d := b.do("GET", link, nil)
	if d.code != http.StatusOK || !strings.Contains(d.body, iss.Address) || !strings.Contains(d.header.Get("Content-Disposition"), "attachment") ||
		strings.Contains(d.header.Get("Content-Disposition"), customer) {
		t.Fatalf("download = %d %q\n%s", d.code, d.header.Get("Content-Disposition"), d.body)
	}
	if again := b.do("GET", link, nil); again.code != http.StatusNotFound {
		t.Errorf("second download = %d, want 404", again.code)
	}

	p = b.do("POST", "/console/subject/erase", url.Values{"csrf": {csrf}, "confirm": {"someone@example.com"}, "reason": {"art 17 request"}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, "Nothing was erased") {
		t.Fatalf("erase with a wrong confirmation = %d\n%s", p.code, p.body)
	}
	noAddress(t, "refused erase page", p.body)
	p = b.do("POST", "/console/subject/erase", url.Values{"csrf": {csrf}, "confirm": {strings.ToUpper(customer)}, "reason": {"art 17 request"}})
	if p.code != http.StatusOK || !strings.Contains(p.body, "Subject erased") || !strings.Contains(p.body, "compliance.erase") {
		t.Fatalf("erase = %d\n%s", p.code, p.body)
	}
	noAddress(t, "erase page", p.body)
	if _, err := h.m.Resolve(context.Background(), iss.Address); err == nil {
		t.Error("the erased token still resolves")
	}
	for _, ev := range []string{audit.ComplianceLookup, audit.ComplianceResolve, audit.ComplianceExport, audit.ComplianceErase} {
		var found bool
		for _, r := range h.records() {
			found = found || (r.Event == ev && r.Actor == "principal:alice")
		}
		if !found {
			t.Errorf("no %s record by principal:alice", ev)
		}
	}
	if strings.Contains(strings.ToLower(h.logs.String()), customer) {
		t.Errorf("log holds the address:\n%s", h.logs.String())
	}
}

func noAddress(t *testing.T, what, body string) {
	t.Helper()
	if strings.Contains(strings.ToLower(body), customer) {
		t.Errorf("%s echoes the address", what)
	}
}

func TestConsoleAuditorTrail(t *testing.T) {
	h := newHarness(t)
	ctx := audit.WithActor(context.Background(), "route:inbound")
	iss, err := h.m.Tokenize(ctx, customer, "")
	if err != nil {
		t.Fatal(err)
	}
	b := h.browser()
	csrf := b.signIn("sam")
	p := b.do("GET", "/console/audit?event=token.created", nil)
	if p.code != http.StatusOK || !strings.Contains(p.body, iss.Address) {
		t.Fatalf("trail filtered by event = %d\n%s", p.code, p.body)
	}
	if !strings.Contains(p.body, `href="/console/audit/export?event=token.created"`) {
		t.Errorf("the export link does not carry the filter")
	}
	p = b.do("GET", "/console/audit?actor=principal:nobody", nil)
	if !strings.Contains(p.body, "No record matches") {
		t.Errorf("actor filter lets records through")
	}
	if p = b.do("GET", "/console/audit?since=yesterday", nil); p.code != http.StatusBadRequest {
		t.Errorf("bad time = %d", p.code)
	}
	p = b.do("GET", "/console/audit/record/1", nil)
	if p.code != http.StatusOK || !strings.Contains(p.body, "Previous hash") {
		t.Errorf("record 1 = %d", p.code)
	}
	if p = b.do("GET", "/console/audit/record/999999", nil); p.code != http.StatusNotFound {
		t.Errorf("record 999999 = %d", p.code)
	}
	ex := b.do("GET", "/console/audit/export?event=token.created", nil)
	if ex.code != http.StatusOK || !strings.Contains(ex.body, `"event":"token.created"`) || strings.Contains(ex.body, `"event":"audit.read"`) {
		t.Errorf("export = %d\n%s", ex.code, ex.body)
	}

	p = b.do("POST", "/console/audit/verify", url.Values{"csrf": {csrf}})
	if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/console/audit/verify/") {
		t.Fatalf("verify = %d → %q", p.code, p.location)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := b.do("GET", p.location, nil)
		if strings.Contains(v.body, "Verified.") {
			break
		}
		if strings.Contains(v.body, "Problems found") || strings.Contains(v.body, "could not run") || time.Now().After(deadline) {
			t.Fatalf("verification:\n%s", v.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A range: judged by the whole chain, said so.
	p = b.do("POST", "/console/audit/verify", url.Values{"csrf": {csrf}, "from": {"1"}, "to": {"2"}})
	waitVerified(t, b, p.location, "Records #1 to #2: no problem")
	for _, bad := range []url.Values{{"from": {"3"}, "to": {"2"}}, {"from": {"x"}}} {
		bad.Set("csrf", csrf)
		if p := b.do("POST", "/console/audit/verify", bad); p.code != http.StatusBadRequest {
			t.Errorf("verify %v = %d, want 400", bad, p.code)
		}
	}
	if ov := b.do("GET", "/console/overview", nil); !strings.Contains(ov.body, "chain verified") {
		t.Errorf("overview does not show the verification:\n%s", ov.body)
	}
	// Another session cannot see this session's verification.
	if o := h.browser(); true {
		o.signIn("sam")
		if v := o.do("GET", p.location, nil); v.code != http.StatusNotFound {
			t.Errorf("another session's verification = %d", v.code)
		}
	}
}

func TestConsoleOverviewAndPrincipals(t *testing.T) {
	h := newHarness(t)
	h.msgs.WithLabelValues("outbound", "unknown_token").Add(2)
	h.unknown.WithLabelValues("outbound").Inc()
	b := h.browser()
	b.signIn("otto")
	p := b.do("GET", "/console/overview", nil)
	for _, want := range []string{"<svg", "inbound route, last hour", "unknown_token", "unknown tokens seen", "Last signed checkpoint"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(p.body, " style=") {
		t.Error("overview has an inline style (the CSP refuses it)")
	}
	p = b.do("GET", "/console/principals", nil)
	for _, want := range []string{"alice", "officer", "bearer token", "0 of 50"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("principals lacks %q", want)
		}
	}
	if strings.Contains(p.body, h.tokens["alice"]) {
		t.Error("principals page shows a token")
	}
}

func TestHistoryBuckets(t *testing.T) {
	h := newHarness(t)
	hist := h.con.hist
	hist.sample()
	h.clock.add(time.Minute)
	hour := hist.buckets(60, time.Minute)
	if len(hour) != 60 {
		t.Fatalf("%d buckets", len(hour))
	}
	var relayed float64
	for _, b := range hour {
		relayed += b.d["inbound/relayed"]
	}
	// The registry started at 3 before the console's first read: the
	// history counts growth since, none here.
	if relayed != 0 {
		t.Errorf("relayed in the hour = %v, want 0", relayed)
	}
	h.msgs.WithLabelValues("inbound", "relayed").Add(2)
	h.clock.add(time.Minute)
	hist.sample()
	h.msgs.WithLabelValues("inbound", "refused_leak").Inc() // the minute under way
	hour = hist.buckets(60, time.Minute)
	if got := hour[59].d["inbound/refused_leak"]; got != 1 {
		t.Errorf("the minute under way: refused_leak = %v, want 1", got)
	}
	if got := hour[59].d["inbound/relayed"] + hour[58].d["inbound/relayed"]; got != 2 {
		t.Errorf("relayed over the last minutes = %v, want 2", got)
	}
	rs := refusals(hour, hist.buckets(24, time.Hour))
	if len(rs) != 1 || rs[0].Result != "refused_leak" || rs[0].Hour != 1 || rs[0].Day != 1 {
		t.Errorf("refusals = %+v", rs)
	}
	if got := since(counts{"a": 2}, counts{"a": 5}); got["a"] != 2 {
		t.Errorf("a reset counter: %v", got)
	}
}

func TestConsoleRefusesPlainHTTPAndCrossOrigin(t *testing.T) {
	h := newHarness(t)
	mux := http.NewServeMux()
	h.con.Register(mux)
	plain := httptest.NewServer(mux)
	defer plain.Close()
	resp, err := plain.Client().Get(plain.URL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("plain HTTP = %d, want 403", resp.StatusCode)
	}

	b := h.browser()
	csrf := b.signIn("alice")
	req, _ := http.NewRequest("POST", h.srv.URL+"/console/subject/resolve",
		strings.NewReader(url.Values{"csrf": {csrf}, "token": {"t1-x@relay.company.example"}, "reason": {"r"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post = %d, want 403", resp.StatusCode)
	}
	for _, r := range h.records() {
		if r.Event == audit.ComplianceResolve {
			t.Errorf("a cross-site post resolved: %+v", r)
		}
	}
}

func waitVerified(t *testing.T, b *browser, location, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := b.do("GET", location, nil)
		if strings.Contains(v.body, want) {
			return
		}
		if strings.Contains(v.body, "Problems found") || strings.Contains(v.body, "could not run") || time.Now().After(deadline) {
			t.Fatalf("verification:\n%s", v.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsolePrincipalRemoved: a reload that removes a principal ends its
// console sessions at the next request, as it ends its API access.
func TestConsolePrincipalRemoved(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.signIn("alice")
	cc := policy.Defaults().Compliance
	h.svc.Reload(context.Background(), cc, []string{"compliance.principals"})
	if p := b.do("GET", "/console/subject", nil); p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/console/signin") {
		t.Errorf("after the principal's removal: %d → %q", p.code, p.location)
	}
}

func TestConsoleTrailPages(t *testing.T) {
	h := newHarness(t)
	ctx := audit.WithActor(context.Background(), "system")
	for i := 0; i < 2*trailPageSize; i++ {
		if _, err := h.trail.Append(ctx, audit.Record{Event: audit.ConfigReloaded, Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	b := h.browser()
	b.signIn("sam")
	p := b.do("GET", "/console/audit?event=config.reloaded", nil)
	older := regexpFind(t, `/console/audit\?before=[0-9]+&amp;event=config.reloaded`, p.body)
	if n := strings.Count(p.body, "<td>config.reloaded</td>"); n != trailPageSize {
		t.Errorf("first page: %d records, want %d", n, trailPageSize)
	}
	p = b.do("GET", strings.ReplaceAll(older, "&amp;", "&"), nil)
	if n := strings.Count(p.body, "<td>config.reloaded</td>"); n != trailPageSize {
		t.Errorf("second page: %d records, want %d", n, trailPageSize)
	}
	if !strings.Contains(p.body, `href="/console/audit/record/2"`) || strings.Contains(p.body, "Older records") {
		t.Errorf("the second page does not end at the oldest record")
	}
}
