package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// routes are the two SMTP listeners with what they own.
type routes struct {
	in, out *smtp.Route
	certs   []*smtp.CertStore
	downs   []*smtp.Downstream
}

// buildRoutes wires both routes from the configuration and the open engine.
// It binds no port (see listen).
func buildRoutes(cfg *policy.Config, e *engine, log *slog.Logger, m *smtp.Metrics) (*routes, error) {
	rs := &routes{}
	ok := false
	defer func() {
		if !ok {
			rs.closeDownstreams()
		}
	}()
	spool, err := spoolDir(cfg)
	if err != nil {
		return nil, err
	}
	d := routeDeps{cfg: cfg, e: e, log: log, m: m, spool: spool, rw: newRewriter(cfg, e.m),
		limiter: smtp.NewConnLimiter(cfg.SMTP.MaxConnections, cfg.SMTP.MaxConnectionsPerIP),
		hosts:   []string{hostname(cfg.Inbound.Hostname), hostname(cfg.Outbound.Hostname)}}
	mailboxes, publicOf, err := mailboxMaps(cfg)
	if err != nil {
		return nil, err
	}
	if err := rs.buildInbound(d, mailboxes); err != nil {
		return nil, err
	}
	if err := rs.buildOutbound(d, publicOf); err != nil {
		return nil, err
	}
	ok = true
	return rs, nil
}

// routeDeps is what both routes are built from.
type routeDeps struct {
	cfg     *policy.Config
	e       *engine
	log     *slog.Logger
	m       *smtp.Metrics
	limiter *smtp.ConnLimiter
	rw      *tokenize.Rewriter
	hosts   []string // inbound, outbound host names
	spool   string
}

func (rs *routes) buildInbound(d routeDeps, mailboxes map[string]string) error {
	cfg := d.cfg
	opts, err := rs.routeOptions(cfg.Inbound.TLS, cfg.Inbound.Downstream, d.hosts[0], d)
	if err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	rs.in, err = smtp.NewInbound(smtp.InboundOptions{Route: opts, Mailboxes: mailboxes,
		Map: d.e.m, Rewriter: d.rw, LocalCase: tokenize.LocalCase(cfg.Tokens.LocalPartCase), Internal: cfg.IsInternal,
		AuthservID: authservID(cfg), AuthCheck: authCheck(cfg), MaxHeaderBytes: cfg.Rewrite.Limits.MaxHeaderBytes})
	return err
}

func (rs *routes) buildOutbound(d routeDeps, publicOf map[string]string) error {
	cfg, o := d.cfg, d.cfg.Outbound
	opts, err := rs.routeOptions(o.TLS, o.Downstream, d.hosts[1], d)
	if err != nil {
		return fmt.Errorf("outbound: %w", err)
	}
	dkim, err := dkimSigner(cfg, d.e.kek)
	if err != nil {
		return err
	}
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
	rs.out, err = smtp.NewOutbound(smtp.OutboundOptions{Route: opts, Users: users, Networks: nets,
		AllowedDomains: allowed, RewriteFrom: o.RewriteFrom, PublicOf: publicOf, Map: d.e.m, Rewriter: d.rw,
		LocalCase: tokenize.LocalCase(cfg.Tokens.LocalPartCase), MaxHeaderBytes: cfg.Rewrite.Limits.MaxHeaderBytes, DKIM: dkim})
	return err
}

// routeOptions loads a route's certificate and builds its downstream.
func (rs *routes) routeOptions(t policy.ServerTLS, d policy.Downstream, host string, deps routeDeps) (smtp.RouteOptions, error) {
	cfg, log := deps.cfg, deps.log
	cert, err := smtp.LoadCert(t.CertFile, t.KeyFile, cfg.DataDir, deps.hosts, log)
	if err != nil {
		return smtp.RouteOptions{}, err
	}
	rs.certs = append(rs.certs, cert)
	down, err := smtp.NewDownstream(smtp.DownstreamConfig{Address: d.Address, TLS: d.TLS, CAFile: d.CAFile,
		ServerName: d.ServerName, HeloName: host, Timeout: cfg.SMTP.DownstreamTimeout,
		PoolSize: cfg.SMTP.DownstreamPoolSize}, log)
	if err != nil {
		return smtp.RouteOptions{}, err
	}
	rs.downs = append(rs.downs, down)
	return smtp.RouteOptions{Hostname: host, TLS: smtp.ServerTLSConfig(cert), Limits: cfg.SMTP,
		Downstream: down, Limiter: deps.limiter, Metrics: deps.m, Log: log, SpoolDir: deps.spool}, nil
}

// mailboxMaps normalizes the configured mailboxes: public → CRM for the
// inbound route, CRM → public for the outbound route's sender fields.
func mailboxMaps(cfg *policy.Config) (map[string]string, map[string]string, error) {
	lc := tokenize.LocalCase(cfg.Tokens.LocalPartCase)
	pub2crm, crm2pub := map[string]string{}, map[string]string{}
	for i, mb := range cfg.Mailboxes {
		p, err := tokenize.Normalize(mb.Public, lc)
		if err != nil {
			return nil, nil, fmt.Errorf("mailboxes[%d].public: %w", i, err)
		}
		c, err := tokenize.Normalize(mb.CRM, lc)
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
