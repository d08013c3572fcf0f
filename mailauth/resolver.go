package mailauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
)

// DefaultDNSTimeout bounds one DNS look-up when NewResolver is given no
// timeout.
const DefaultDNSTimeout = 5 * time.Second

// Resolver answers the DNS questions of SPF, DKIM and DMARC through one
// configured server, each look-up bounded by a timeout.
//
// It wraps a pure-Go net.Resolver whose Dial goes to the configured server,
// so every look-up (UDP, and TCP after a truncated answer) reaches that
// server whatever /etc/resolv.conf says. Its methods have net.Resolver's
// signatures, which makes it the resolver of blitiri.com.ar/go/spf as it is;
// go-msgauth's dkim and dmarc packages get LookupTXT through a closure over
// the caller's context.
//
// Errors are always *net.DNSError, which is what the three libraries
// classify: IsNotFound for NXDOMAIN and empty answers (a permanent "no
// record"), Temporary() for everything else that went wrong, timeouts and
// cancellations included. A DNS failure therefore becomes a temperror
// result, never a permerror or an error return.
type Resolver struct {
	net     *net.Resolver
	server  string // host:port; "" for the system's configuration
	timeout time.Duration
	keys    *keyCache // DKIM and ARC key records across messages (keycache.go)
}

// NewResolver returns a Resolver that asks server ("host:port"; a bare host
// means port 53) and gives up on a look-up after timeout (DefaultDNSTimeout
// when zero or negative). With server "" the system's resolver configuration
// is used.
func NewResolver(server string, timeout time.Duration) *Resolver {
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	r := &Resolver{net: &net.Resolver{}, timeout: timeout, keys: newKeyCache(keyCacheSize, time.Now)}
	if server == "" {
		return r
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	r.server = server
	var d net.Dialer
	r.net = &net.Resolver{
		PreferGo: true,
		// The address the Go resolver picked from resolv.conf is ignored:
		// every query goes to the configured server.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		},
	}
	return r
}

// LookupTXT returns the TXT records of name, the strings of each record
// joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	txts, err := r.net.LookupTXT(ctx, fqdn(name))
	return txts, dnsError(ctx, name, err)
}

// LookupMX returns the MX records of name (SPF "mx", RFC 7208 §5.4).
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	mxs, err := r.net.LookupMX(ctx, fqdn(name))
	return mxs, dnsError(ctx, name, err)
}

// LookupIPAddr returns the addresses of host (SPF "a" and "mx", RFC 7208
// §5.3, §5.4).
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.net.LookupIPAddr(ctx, fqdn(host))
	return addrs, dnsError(ctx, host, err)
}

// LookupAddr returns the names of addr (SPF "ptr" and %{p}, RFC 7208 §5.5).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	names, err := r.net.LookupAddr(ctx, addr)
	return names, dnsError(ctx, addr, err)
}

// txtFunc adapts LookupTXT to the context-free callback of go-msgauth's
// dkim.VerifyOptions and dmarc.LookupOptions.
func (r *Resolver) txtFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return r.LookupTXT(ctx, name) }
}

// fqdn roots a name so that resolv.conf's search list never applies: the
// names of mail authentication are always absolute.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// dnsError makes every failure a *net.DNSError, the type the SPF, DKIM and
// DMARC libraries inspect: "not found" stays permanent, anything else that
// is not already classified as temporary (a cancelled context, an error of
// another type) becomes temporary, so that it maps to temperror (RFC 7208
// §2.6.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3).
func dnsError(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if !errors.As(err, &de) {
		return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
	}
	out := *de
	if !out.IsNotFound && !out.Temporary() {
		out.IsTemporary = true
	}
	if ctx.Err() != nil && !out.IsNotFound {
		out.IsTimeout = true
	}
	return &out
}
