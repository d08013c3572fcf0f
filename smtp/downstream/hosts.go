package downstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver is the DNS the MX look-up uses: mailauth.Resolver, which asks
// the configured server (mailauth.dns_server) and bounds each look-up.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// ErrNullMX: the domain publishes a null MX (RFC 7505 §3): it accepts no
// mail. The configuration is wrong, not the message: temporary.
var ErrNullMX = errors.New("downstream domain has a null MX")

const (
	defaultMXPort = 25
	// mxTTL is how long an MX answer is reused: a look-up per message
	// would tie every message to DNS.
	mxTTL = time.Minute
	// downFor is how long a host that failed to connect is tried last:
	// without it every message would wait for a dead first host's timeout.
	downFor = 30 * time.Second
)

// host is one downstream server with its own idle connections.
type host struct {
	label   string // host:port as configured or found in MX: logs and metrics
	name    string // host name: certificate check, DNS
	port    string
	resolve bool        // an MX host: addresses through Config.Resolver
	tls     *tls.Config // nil in insecure mode

	// guarded by Pool.mu
	idle      []*downConn // LIFO: the most recently used is the most likely alive
	downUntil time.Time
}

// checkTargets: exactly one of Address, Addresses and MX, each well formed.
func checkTargets(cfg Config) error {
	n := 0
	for _, set := range []bool{cfg.Address != "", len(cfg.Addresses) > 0, cfg.MX != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("downstream: set one of address, addresses and mx")
	}
	addrs := cfg.Addresses
	if cfg.Address != "" {
		addrs = []string{cfg.Address}
	}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err != nil || h == "" {
			return fmt.Errorf("downstream address %q: want host:port", a)
		}
	}
	if cfg.MX != "" {
		if cfg.Resolver == nil {
			return errors.New("downstream mx: needs a resolver")
		}
		if cfg.MXPort < 0 || cfg.MXPort > 65535 {
			return fmt.Errorf("downstream mx port %d: want 1-65535", cfg.MXPort)
		}
	}
	return nil
}

// initTargets makes the hosts of Address or Addresses, or the MX cache.
func (d *Pool) initTargets() error {
	if d.cfg.MX != "" {
		if d.cfg.MXPort == 0 {
			d.cfg.MXPort = defaultMXPort
		}
		d.mx = &mxCache{}
		return nil
	}
	addrs := d.cfg.Addresses
	if d.cfg.Address != "" {
		addrs = []string{d.cfg.Address}
	}
	for _, a := range addrs {
		name, port, _ := net.SplitHostPort(a) // checked by checkTargets
		d.static = append(d.static, d.hostFor(name, port, false))
	}
	return nil
}

// hostFor returns the host of name and port, made on first use.
func (d *Pool) hostFor(name, port string, resolve bool) *host {
	label := net.JoinHostPort(name, port)
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.hosts[label]; ok {
		return h
	}
	h := &host{label: label, name: name, port: port, resolve: resolve}
	if d.tls != nil {
		h.tls = d.tls.Clone()
		if h.tls.ServerName == "" {
			h.tls.ServerName = name
		}
	}
	d.hosts[label] = h
	return h
}

// describe names the downstream for a log line.
func (d *Pool) describe() string {
	switch {
	case d.cfg.MX != "":
		return "mx:" + d.cfg.MX
	case d.cfg.Address != "":
		return d.cfg.Address
	}
	return strings.Join(d.cfg.Addresses, ",")
}

// targets are the hosts to try, in order: the configured list, or the MX
// hosts by preference (equal preferences shuffled, RFC 5321 §5.1). A host
// that failed lately goes last, keeping the order among those.
func (d *Pool) targets(ctx context.Context) ([]*host, error) {
	hosts := d.static
	if d.mx != nil {
		var err error
		if hosts, err = d.mxHosts(ctx); err != nil {
			return nil, err
		}
	}
	if len(hosts) == 1 {
		return hosts, nil // nothing to reorder: no allocation per message
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*host, 0, len(hosts))
	for _, h := range hosts {
		if !now.Before(h.downUntil) {
			out = append(out, h)
		}
	}
	for _, h := range hosts {
		if now.Before(h.downUntil) {
			out = append(out, h)
		}
	}
	return out, nil
}

func (d *Pool) markDown(h *host) {
	d.mu.Lock()
	h.downUntil = time.Now().Add(downFor)
	d.mu.Unlock()
}

func (d *Pool) markUp(h *host) {
	d.mu.Lock()
	h.downUntil = time.Time{}
	d.mu.Unlock()
}

// observe reports a host's event to Config.Observe.
func (d *Pool) observe(h *host, result string) {
	if d.cfg.Observe != nil {
		d.cfg.Observe(h.label, result)
	}
}

// dialHost opens a TCP connection to h: its configured address, or for an
// MX host each of its addresses from the resolver in turn.
func (d *Pool) dialHost(ctx context.Context, h *host) (net.Conn, error) {
	if !h.resolve {
		return d.dialer.DialContext(ctx, "tcp", h.label)
	}
	ips, err := d.cfg.Resolver.LookupIPAddr(ctx, h.name)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("downstream host %s has no address", h.name)
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.dialer.DialContext(ctx, "tcp", net.JoinHostPort(ip.IP.String(), h.port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// mxCache holds the last MX answer of the configured domain.
type mxCache struct {
	mu      sync.Mutex
	records []*net.MX
	at      time.Time
}

// mxHosts looks up the MX hosts of the domain (cached for mxTTL) and
// orders them: lowest preference first, equal preferences in random order
// to spread the load (RFC 5321 §5.1). A domain without MX records is its
// own mail host (the implicit MX, §5.1); a null MX is refused (RFC 7505).
// A failed look-up is temporary.
func (d *Pool) mxHosts(ctx context.Context) ([]*host, error) {
	recs, err := d.mx.lookup(ctx, d.cfg)
	if err != nil {
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			d.log.Warn("downstream MX look-up failed", "downstream", d.describe(), "err", err)
			return nil, downstreamErr("connect", fmt.Errorf("MX look-up: %w", err))
		}
		recs = nil
	}
	if len(recs) == 1 && (recs[0].Host == "." || recs[0].Host == "") {
		d.log.Error("downstream domain publishes a null MX: it takes no mail", "downstream", d.describe())
		return nil, downstreamErr("connect", ErrNullMX)
	}
	port := strconv.Itoa(d.cfg.MXPort)
	if len(recs) == 0 {
		return []*host{d.hostFor(strings.TrimSuffix(d.cfg.MX, "."), port, true)}, nil
	}
	ordered := orderMX(recs)
	hosts := make([]*host, 0, len(ordered))
	for _, r := range ordered {
		hosts = append(hosts, d.hostFor(strings.TrimSuffix(r.Host, "."), port, true))
	}
	return hosts, nil
}

// lookup returns the cached answer while fresh, else asks the resolver.
// Not-found answers are cached too; failures are not.
func (c *mxCache) lookup(ctx context.Context, cfg Config) ([]*net.MX, error) {
	c.mu.Lock()
	if !c.at.IsZero() && time.Since(c.at) < mxTTL {
		recs := c.records
		c.mu.Unlock()
		if recs == nil {
			return nil, &net.DNSError{Err: "no MX", Name: cfg.MX, IsNotFound: true}
		}
		return recs, nil
	}
	c.mu.Unlock()
	recs, err := cfg.Resolver.LookupMX(ctx, cfg.MX)
	var dnsErr *net.DNSError
	if err != nil && (!errors.As(err, &dnsErr) || !dnsErr.IsNotFound) {
		return nil, err
	}
	c.mu.Lock()
	c.records, c.at = recs, time.Now()
	if err != nil {
		c.records = nil
	}
	c.mu.Unlock()
	return recs, err
}

// orderMX sorts by preference and shuffles each run of equal preference.
func orderMX(recs []*net.MX) []*net.MX {
	out := slices.Clone(recs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out
}
