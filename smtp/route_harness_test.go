package smtp

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// The customers of the route tests: none of these may appear in a log line
// or at the CRM.
var testCustomers = []string{"jane.doe@example.com", "bob.roe@example.org", "carol@customer.example"}

// harness runs both routes over loopback against one recording downstream,
// with a token map on the in-memory store (storetest.Mem), or on a bbolt
// file in a temporary directory when a test measures or needs the disk.
type harness struct {
	t       testing.TB
	ds      *downstreamtest.Sink
	dsAddr  string
	db      tokenize.Store
	m       *tokenize.Map
	in, out *Route
	met     *Metrics // both routes' metrics
	logs    *logbuf.Buffer
	roots   *x509.CertPool
}

// harnessOpts are the knobs tests turn.
type harnessOpts struct {
	limits policy.SMTP
	users  map[string]string
	// authGuard: OutboundOptions.AuthGuard; nil: DefaultAuthGuard.
	authGuard *AuthGuard
	networks  []netip.Prefix
	rewrite   rewrite.RewriteOptions
	fromRW    string
	ds        *downstreamtest.Sink
	auth      *AuthCheck             // inbound SPF/DKIM/DMARC check; nil: none
	dkim      *mailauth.SignerConfig // outbound signature; nil: none
	spoolDir  string                 // "" : a fresh temporary directory
	audit     Auditor                // per-message records; nil: none
	// createAudit audits token creation (tokenize.Options.Audit); nil: none.
	createAudit tokenize.Auditor
	// boltStore puts the map in a bbolt file instead of memory.
	boltStore bool
	// store, when set, is the map's store (a benchmark's etcd).
	store tokenize.Store
	// suppressErased: tokenize.Options.SuppressErased.
	suppressErased bool
	// tokenRate and now: the inbound route's NewTokenRate and its clock.
	tokenRate NewTokenRate
	now       func() time.Time
	// trustedRelays, trustedIDs and postmaster: the inbound route's
	// (relay_test.go).
	trustedRelays []netip.Prefix
	trustedIDs    []string
	postmaster    string
	// quarantine and unquarantine: the inbound route's; nil: none.
	quarantine   func(context.Context, []rewrite.Stripped) error
	unquarantine func(context.Context, []string) error
	// dsConfig adjusts both routes' downstream configuration.
	dsConfig func(*downstream.Config)
}

func testLimits() policy.SMTP {
	return policy.SMTP{MaxMessageBytes: 1 << 20, MaxRecipients: 10, MaxLineLength: 2000,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, DataTimeout: 5 * time.Second,
		MaxConnections: 50, MaxConnectionsPerIP: 50, DownstreamPoolSize: 2,
		DownstreamTimeout: dsTimeout, ShutdownTimeout: 2 * time.Second, RefusalCode: 554}
}

func newHarness(t testing.TB, mutate func(*harnessOpts)) *harness {
	t.Helper()
	o := harnessOpts{limits: testLimits(), ds: &downstreamtest.Sink{},
		networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if mutate != nil {
		mutate(&o)
	}
	h := &harness{t: t, ds: o.ds, logs: &logbuf.Buffer{}, met: NewMetrics(nil)}
	h.dsAddr = downstreamtest.Start(t, h.ds, nil)
	h.openMap(t, o)
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cert, err := LoadCert("", "", t.TempDir(), []string{"mx.test", "relay.test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	h.roots = x509.NewCertPool()
	h.roots.AddCert(cert.Leaf())
	internal := func(d string) bool { return d == "company.example" || d == "crm.example" }
	o.rewrite.Internal = internal
	rw := rewrite.NewRewriter(h.m, o.rewrite)
	if o.spoolDir == "" {
		o.spoolDir = t.TempDir()
	}
	route := func(name string) RouteOptions {
		return RouteOptions{Hostname: name, TLS: ServerTLSConfig(cert), Limits: o.limits, SpoolDir: o.spoolDir,
			Downstream: newDS(t, h.dsAddr, log, func(c *downstream.Config) {
				c.PoolSize, c.Timeout = o.limits.DownstreamPoolSize, o.limits.DownstreamTimeout
				if o.dsConfig != nil {
					o.dsConfig(c)
				}
			}),
			Limiter: NewConnLimiter(o.limits.MaxConnections, o.limits.MaxConnectionsPerIP), Log: log, Audit: o.audit, Metrics: h.met}
	}
	h.in, err = NewInbound(InboundOptions{Route: route("mx.test"), Map: h.m, Rewriter: rw, Internal: internal,
		Mailboxes: map[string]string{"support@company.example": "support@crm.example"}, LocalCase: address.LocalFold,
		AuthCheck: o.auth, NewTokenRate: o.tokenRate, Now: o.now, TrustedRelays: o.trustedRelays,
		TrustedAuthservIDs: o.trustedIDs, Postmaster: o.postmaster,
		Quarantine: o.quarantine, Unquarantine: o.unquarantine})
	if err != nil {
		t.Fatal(err)
	}
	h.out, err = NewOutbound(OutboundOptions{Route: route("relay.test"), Users: o.users, Networks: o.networks,
		AllowedDomains: map[string]bool{"company.example": true}, RewriteFrom: o.fromRW,
		PublicOf: map[string]string{"support@crm.example": "support@company.example"},
		Map:      h.m, Rewriter: rw, LocalCase: address.LocalFold, AuthFailureDelay: -1, DKIM: o.dkim, AuthGuard: o.authGuard})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Route{h.in, h.out} {
		if err := r.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		go r.Serve()
		t.Cleanup(func() { r.Close() })
	}
	t.Cleanup(h.checkLogs)
	return h
}

func (h *harness) openMap(t testing.TB, o harnessOpts) {
	key := func() []byte { k := make([]byte, 32); rand.Read(k); return k }
	keys := vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: key()}, vault.PurposeRecord: {1: key()}})
	var db tokenize.Store = storetest.NewMem()
	switch {
	case o.store != nil:
		db = o.store
	case o.boltStore:
		var err error
		if db, err = boltstore.Open(filepath.Join(t.TempDir(), "map.db")); err != nil {
			t.Fatal(err)
		}
	}
	m, err := tokenize.NewMap(db, keys, tokenize.Options{Tenant: "test",
		Format: tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: 16}, Audit: o.createAudit, SuppressErased: o.suppressErased})
	if err != nil {
		t.Fatal(err)
	}
	h.db, h.m = db, m
	t.Cleanup(func() { m.Close(); db.Close() })
}

// checkLogs fails the test if any log line names a customer (DESIGN.md
// invariant 1).
func (h *harness) checkLogs() {
	logs := strings.ToLower(h.logs.String())
	for _, c := range testCustomers {
		if strings.Contains(logs, c) {
			h.t.Errorf("a log line names the customer %s:\n%s", c, h.logs.String())
		}
	}
}

// token returns the token the map holds for a customer.
func (h *harness) token(addr string) string {
	iss, err := h.m.Tokenize(context.Background(), addr, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return iss.Address
}

// rawClient speaks SMTP line by line, to see every reply code.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (h *harness) dial(r *Route) *rawClient {
	h.t.Helper()
	c := h.dial2(r)
	c.expect("220")
	return c
}

// dial2 connects without reading the greeting.
func (h *harness) dial2(r *Route) *rawClient {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", r.Addr().String(), 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &rawClient{t: h.t, conn: conn, r: bufio.NewReader(conn)}
	h.t.Cleanup(func() { conn.Close() })
	return c
}

// reply reads one (multi-line) reply.
func (c *rawClient) reply() string {
	c.t.Helper()
	var all []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (so far %q)", err, all)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// cmd sends one line and returns the reply.
func (c *rawClient) cmd(format string, args ...any) string {
	c.t.Helper()
	c.write(fmt.Sprintf(format, args...) + "\r\n")
	return c.reply()
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads a reply and checks its start.
func (c *rawClient) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want %s…", r, prefix)
	}
	return r
}

// must sends a command and checks the reply's start.
func (c *rawClient) must(prefix, format string, args ...any) string {
	c.t.Helper()
	r := c.cmd(format, args...)
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("%s: reply %q, want %s…", fmt.Sprintf(format, args...), r, prefix)
	}
	return r
}

// startTLS upgrades the connection, trusting the harness certificate.
func (c *rawClient) startTLS(h *harness, name string) {
	c.t.Helper()
	c.must("220", "STARTTLS")
	c.conn, c.r = tlsClient(c.t, h, c, name)
}

// tlsClient runs the client handshake on c's connection.
func tlsClient(t testing.TB, h *harness, c *rawClient, name string) (net.Conn, *bufio.Reader) {
	t.Helper()
	tc := tls.Client(c.conn, &tls.Config{RootCAs: h.roots, ServerName: name, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, bufio.NewReader(tc)
}

// data sends DATA, the message (CRLF lines, dot-stuffed by the caller) and
// the final dot, and returns the final reply.
func (c *rawClient) data(msg string) string {
	c.t.Helper()
	c.must("354", "DATA")
	c.write(msg + "\r\n.\r\n")
	return c.reply()
}

// crlf turns a readable test message into wire form.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const customerMsg = `From: Jane Doe <jane.doe@example.com>
To: Support <support@company.example>
Cc: bob.roe@example.org
Subject: where is my order
Message-ID: <abc.123@mail.example.com>
In-Reply-To: <prev.1@crm.example>
References: <root.0@crm.example> <prev.1@crm.example>

Hi, write to carol@customer.example or me.
`
