package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// routes are the two SMTP listeners with what they own.
type routes struct {
	in, out *smtp.Route
	certs   []*smtp.CertStore
	// limiters count each route's connections apart: inbound, outbound
	// (DESIGN.md invariant 5: one route's clients never starve the other's).
	limiters [2]*smtp.ConnLimiter

	mu    sync.Mutex
	downs []*downstream.Pool // the current configurations' downstreams: inbound, outbound
	// metrics count per downstream host too (downstream.Config.Observe):
	// each reload's new downstreams get them.
	metrics *smtp.Metrics
}

// buildRoutes wires both routes from the configuration and the open engine.
// It binds no port (see listen).
func buildRoutes(cfg *policy.Config, e *engine, log *slog.Logger, m *smtp.Metrics) (*routes, error) {
	spool, err := spoolDir(cfg)
	if err != nil {
		return nil, err
	}
	d := newRouteDeps(cfg, e, log)
	d.metrics = m
	inLim, outLim := cfg.InboundConnLimits(), cfg.OutboundConnLimits()
	rs := &routes{metrics: m, limiters: [2]*smtp.ConnLimiter{
		smtp.NewConnLimiter(inLim.MaxConnections, inLim.MaxConnectionsPerIP),
		smtp.NewConnLimiter(outLim.MaxConnections, outLim.MaxConnectionsPerIP)}}
	for i, t := range []policy.ServerTLS{cfg.Inbound.TLS, cfg.Outbound.TLS} {
		cert, err := smtp.LoadCert(t.CertFile, t.KeyFile, cfg.DataDir, d.hosts, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", []string{smtp.RouteInbound, smtp.RouteOutbound}[i], err)
		}
		rs.certs = append(rs.certs, cert)
	}
	in, out, err := d.options()
	if err != nil {
		return nil, err
	}
	rs.downs = []*downstream.Pool{in.Route.Downstream, out.Route.Downstream}
	// The fixed part of both routes: a reload changes none of it.
	fixed := func(ro *smtp.RouteOptions, i int) {
		ro.TLS, ro.Limiter, ro.Metrics, ro.Log, ro.SpoolDir = smtp.ServerTLSConfig(rs.certs[i]), rs.limiters[i], m, log, spool
		ro.Audit = e.trail
	}
	fixed(&in.Route, 0)
	fixed(&out.Route, 1)
	if rs.in, err = smtp.NewInbound(in); err == nil {
		rs.out, err = smtp.NewOutbound(out)
	}
	if err != nil {
		rs.closeDownstreams()
		return nil, err
	}
	return rs, nil
}

// routeDeps is what both routes' configurations are built from.
type routeDeps struct {
	cfg *policy.Config
	e   *engine
	log *slog.Logger
	// One rewriter per route: each has its own budget of parts held
	// whole (rewrite.limits.max_held_bytes), so one route's large
	// messages never make the other's wait (DESIGN.md invariant 5).
	rwIn, rwOut *rewrite.Rewriter
	hosts       []string // inbound, outbound host names
	// metrics, when set, count per downstream host; nil: none.
	metrics *smtp.Metrics
}

func newRouteDeps(cfg *policy.Config, e *engine, log *slog.Logger) routeDeps {
	return routeDeps{cfg: cfg, e: e, log: log, rwIn: newRewriter(cfg, e.m), rwOut: newRewriter(cfg, e.m),
		hosts: []string{hostname(cfg.Inbound.Hostname), hostname(cfg.Outbound.Hostname)}}
}

// options returns both routes' options, each with a new downstream, at
// start and at every reload. Of their RouteOptions only Hostname, Limits
// and Downstream are set: the rest is fixed at start (buildRoutes). On
// error no downstream is left open.
func (d routeDeps) options() (in smtp.InboundOptions, out smtp.OutboundOptions, err error) {
	cfg := d.cfg
	mailboxes, publicOf, err := mailboxMaps(cfg)
	if err != nil {
		return in, out, err
	}
	dkim, err := dkimSigner(cfg, d.e.kek)
	if err != nil {
		return in, out, err
	}
	check, err := authCheck(cfg, d.e.kek)
	if err != nil {
		return in, out, err
	}
	inDown, err := d.downstream(cfg.Inbound.Downstream, d.hosts[0], smtp.RouteInbound)
	if err != nil {
		return in, out, fmt.Errorf("inbound: %w", err)
	}
	outDown, err := d.downstream(cfg.Outbound.Downstream, d.hosts[1], smtp.RouteOutbound)
	if err != nil {
		inDown.Close()
		return in, out, fmt.Errorf("outbound: %w", err)
	}
	q, err := d.e.quarantine(cfg)
	if err != nil {
		inDown.Close()
		outDown.Close()
		return in, out, err
	}
	lc := address.LocalCase(cfg.Tokens.LocalPartCase)
	in = smtp.InboundOptions{Route: smtp.RouteOptions{Hostname: d.hosts[0], Limits: cfg.SMTP, Downstream: inDown},
		Mailboxes: mailboxes, Map: d.e.m, Rewriter: d.rwIn, LocalCase: lc, Internal: cfg.IsInternal,
		AuthservID: authservID(cfg), AuthCheck: check, MaxHeaderBytes: cfg.Rewrite.Limits.MaxHeaderBytes,
		NewTokenRate:  smtp.NewTokenRate{PerIP: cfg.Inbound.NewTokenRate.PerIP, Total: cfg.Inbound.NewTokenRate.Total},
		TrustedRelays: cfg.TrustedRelayPrefixes(), TrustedAuthservIDs: cfg.Inbound.AuthCheck.TrustedAuthservIDs,
		Postmaster: cfg.Inbound.Postmaster,
		Quarantine: keepStripped(q), Unquarantine: dropStripped(q)}
	o := cfg.Outbound
	users := map[string]string{}
	for _, u := range o.AuthUsers {
		users[u.Name] = u.PasswordHash
	}
	var nets []netip.Prefix
	for _, n := range o.ClientNetworks {
		nets = append(nets, netip.MustParsePrefix(n)) // validated at load
	}
	allowed := map[string]bool{}
	for _, dom := range o.AllowedDomains {
		allowed[dom] = true
	}
	out = smtp.OutboundOptions{Route: smtp.RouteOptions{Hostname: d.hosts[1], Limits: cfg.SMTP, Downstream: outDown},
		Users: users, Networks: nets, AllowedDomains: allowed, RewriteFrom: o.RewriteFrom, PublicOf: publicOf,
		Map: d.e.m, Rewriter: d.rwOut, LocalCase: lc, MaxHeaderBytes: cfg.Rewrite.Limits.MaxHeaderBytes, DKIM: dkim}
	return in, out, nil
}

// downstream builds a route's client towards its downstream
// (downstream.go holds the settings of issue 16).
func (d routeDeps) downstream(ds policy.Downstream, host, route string) (*downstream.Pool, error) {
	s := d.cfg.SMTP
	c := downstream.Config{Address: ds.Address, TLS: ds.TLS, CAFile: ds.CAFile,
		ServerName: ds.ServerName, HeloName: host, Timeout: s.DownstreamTimeout, PoolSize: s.DownstreamPoolSize}
	if err := d.downstreamDelivery(&c, ds, route); err != nil {
		return nil, err
	}
	return downstream.New(c, d.log)
}

// mailboxMaps normalizes the configured mailboxes: public → CRM for the
// inbound route, CRM → public for the outbound route's sender fields.
func mailboxMaps(cfg *policy.Config) (map[string]string, map[string]string, error) {
	lc := address.LocalCase(cfg.Tokens.LocalPartCase)
	pub2crm, crm2pub := map[string]string{}, map[string]string{}
	for i, mb := range cfg.Mailboxes {
		p, err := address.Normalize(mb.Public, lc)
		if err != nil {
			return nil, nil, fmt.Errorf("mailboxes[%d].public: %w", i, err)
		}
		c, err := address.Normalize(mb.CRM, lc)
		if err != nil {
			return nil, nil, fmt.Errorf("mailboxes[%d].crm: %w", i, err)
		}
		pub2crm[p.String()] = c.String()
		crm2pub[c.String()] = p.String()
	}
	return pub2crm, crm2pub, nil
}

// hostname is the configured name, or the machine's.
func hostname(h string) string {
	if h != "" {
		return h
	}
	if n, err := os.Hostname(); err == nil && n != "" {
		return n
	}
	return "localhost"
}

// listen binds both routes' addresses.
func (rs *routes) listen(cfg *policy.Config) error {
	if err := rs.in.Listen(cfg.Inbound.Listen); err != nil {
		return err
	}
	return rs.out.Listen(cfg.Outbound.Listen)
}

// serve runs both routes until shutdown; the first failure is returned.
func (rs *routes) serve() <-chan error {
	errc := make(chan error, 2)
	for _, r := range []*smtp.Route{rs.in, rs.out} {
		go func() { errc <- r.Serve() }()
	}
	return errc
}

// shutdown drains both routes within ctx and closes the downstreams.
func (rs *routes) shutdown(ctx context.Context) error {
	errc := make(chan error, 2)
	for _, r := range []*smtp.Route{rs.in, rs.out} {
		go func() { errc <- r.Shutdown(ctx) }()
	}
	err := errors.Join(<-errc, <-errc)
	rs.closeDownstreams()
	return err
}

func (rs *routes) closeDownstreams() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, d := range rs.downs {
		d.Close()
	}
}

// reloadCerts re-reads the listeners' certificates (SIGHUP).
func (rs *routes) reloadCerts() error {
	var errs []error
	for _, c := range rs.certs {
		errs = append(errs, c.Reload())
	}
	return errors.Join(errs...)
}
