package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/quarantine"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// clock is a settable clock for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is the console over a real engine (bbolt file, local keyring,
// signed audit trail, the compliance service as serve builds it) behind
// an httptest TLS server.
type harness struct {
	t       *testing.T
	dir     string
	trail   *audit.Log
	m       *tokenize.Map
	q       *quarantine.Store
	svc     *compliance.Service
	con     *Console
	srv     *httptest.Server
	clock   *clock
	logs    *logbuf.Buffer
	tokens  map[string]string
	msgs    *prometheus.CounterVec
	unknown *prometheus.CounterVec
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, dir: t.TempDir(), logs: &logbuf.Buffer{}, tokens: map[string]string{},
		clock: &clock{t: time.Now()}}
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	db, err := boltstore.Open(filepath.Join(h.dir, "tokenproxy.db"))
	if err != nil {
		t.Fatal(err)
	}
	kek, err := vault.OpenLocal(filepath.Join(h.dir, "keyring.json"), vault.LocalOptions{Create: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := kek.AuditSigner()
	if err != nil {
		t.Fatal(err)
	}
	h.trail, err = audit.Open(ctx, audit.Options{Path: filepath.Join(h.dir, "audit.jsonl"), Sync: false, Signer: signer,
		CheckpointEvery: 5, CheckpointInterval: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := vault.Load(ctx, kek, db)
	if err != nil {
		t.Fatal(err)
	}
	h.m, err = tokenize.NewMap(db, keys, tokenize.Options{
		Format: tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: 16},
		Tenant: "default", LocalCase: address.LocalCase("fold"), Logger: log,
		Audit: compliance.MapAudit{Log: h.trail}})
	if err != nil {
		t.Fatal(err)
	}
	h.q, err = quarantine.Open(filepath.Join(h.dir, "quarantine"), keys)
	if err != nil {
		t.Fatal(err)
	}
	cc := policy.Defaults().Compliance
	cc.Principals = nil
	for name, roles := range map[string][]string{"alice": {"officer"}, "sam": {"auditor"}, "otto": {"operator"}} {
		tok := "secret-" + name
		sum := sha256.Sum256([]byte(tok))
		h.tokens[name] = tok
		cc.Principals = append(cc.Principals, policy.Principal{Name: name, Roles: roles, TokenSHA256: hex.EncodeToString(sum[:])})
	}
	auditKeys := func(ctx context.Context) (audit.Keys, error) {
		pubs, err := signer.PublicKeys(ctx)
		if err != nil {
			return nil, err
		}
		ks := audit.Keys{}
		for v, p := range pubs {
			ks.Add(signer.KeyID(), v, p)
		}
		return ks, nil
	}
	cc.Principals = append(cc.Principals, policy.Principal{Name: "carol", Roles: []string{"auditor"}, ClientCertCN: "carol.ops.example"})
	h.svc = compliance.New(compliance.Options{Map: h.m, DB: db, Trail: h.trail, Keys: auditKeys, Config: cc, Log: log,
		Quarantine: h.q})
	reg := prometheus.NewRegistry()
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricMessages, Help: "m"}, []string{"route", "result"})
	reg.MustRegister(msgs)
	h.msgs = msgs
	msgs.WithLabelValues("inbound", "relayed").Add(3)
	msgs.WithLabelValues("outbound", "unknown_token").Add(1)
	unknown := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricUnknownTokens, Help: "u"}, []string{"route"})
	reg.MustRegister(unknown)
	h.unknown = unknown
	h.con, err = New(Options{Service: h.svc, Gatherer: reg, Config: policy.Console{Enabled: true, IdleTimeout: time.Minute},
		Log: log, Now: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.svc.Register(mux)
	h.con.Register(mux)
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		h.srv.Close()
		h.con.Close()
		h.svc.Close()
		h.m.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h.trail.Close(cctx)
		cancel()
		kek.Close()
		db.Close()
	})
	return h
}

// browser is an HTTP client with its own cookie jar, not following
// redirects (the tests look at them).
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := h.srv.Client()
	cc := *c
	cc.Jar = jar
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{h: h, c: &cc}
}

type page struct {
	code     int
	header   http.Header
	body     string
	location string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.h.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.h.srv.URL+path, rd)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{code: resp.StatusCode, header: resp.Header, body: string(body), location: resp.Header.Get("Location")}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token of a page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", p.body)
	}
	return m[1]
}

// signIn signs in as who with the bearer token, returning the overview's
// form token.
func (b *browser) signIn(who string) string {
	t := b.h.t
	t.Helper()
	p := b.do("GET", "/console/signin", nil)
	res := b.do("POST", "/console/signin", url.Values{"csrf": {p.csrf(t)}, "token": {b.h.tokens[who]}})
	if res.code != http.StatusSeeOther || res.location != "/console/overview" {
		t.Fatalf("sign-in as %s = %d → %q\n%s", who, res.code, res.location, res.body)
	}
	ov := b.do("GET", "/console/overview", nil)
	if ov.code != http.StatusOK {
		t.Fatalf("overview = %d\n%s", ov.code, ov.body)
	}
	return ov.csrf(t)
}

// records is every record of the trail.
func (h *harness) records() []audit.Record {
	h.t.Helper()
	if err := h.m.SyncAudit(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	f, err := os.Open(h.trail.Path())
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	if err := audit.Scan(f, func(r audit.Record, _ []byte) error { out = append(out, r); return nil }); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func regexpFind(t *testing.T, re, s string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindString(s)
	if m == "" {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	return m
}
