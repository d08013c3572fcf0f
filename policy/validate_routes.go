package policy

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"
)

var (
	// bcryptRE and argon2idRE match the modular crypt forms written by
	// htpasswd -B, golang.org/x/crypto/bcrypt and the argon2 reference tool.
	bcryptRE   = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)
	argon2idRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`)
)

func (c *Config) validateRoutes() error {
	for _, check := range []func() error{c.validateInbound, c.validateOutbound, c.validateAuthUsers, c.validateListeners, c.validateSMTP, c.validateRelays} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateInbound() error {
	in := c.Inbound
	if err := c.checkHostname("inbound.hostname", in.Hostname); err != nil {
		return err
	}
	if err := c.checkServerTLS("inbound.tls", in.TLS); err != nil {
		return err
	}
	if err := c.checkNewTokenRate(in.NewTokenRate); err != nil {
		return err
	}
	return c.checkDownstream("inbound.downstream", in.Downstream)
}

func (c *Config) validateOutbound() error {
	out := c.Outbound
	if err := c.checkHostname("outbound.hostname", out.Hostname); err != nil {
		return err
	}
	if err := c.checkServerTLS("outbound.tls", out.TLS); err != nil {
		return err
	}
	if len(out.AuthUsers) == 0 && len(out.ClientNetworks) == 0 {
		return c.fail("outbound", "list auth_users or client_networks, or nobody can relay")
	}
	for i, n := range out.ClientNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return c.fail(fmt.Sprintf("outbound.client_networks[%d]", i), "must be a CIDR prefix like 10.0.0.0/8, got %q", n)
		}
	}
	for i, d := range out.AllowedDomains {
		f := fmt.Sprintf("outbound.allowed_domains[%d]", i)
		if !hostRE.MatchString(d) {
			return c.fail(f, "must be a lower-case ASCII host name, got %q", d)
		}
		if d == c.RelayDomain {
			return c.fail(f, "the relay domain holds tokens, it cannot be a plain recipient domain")
		}
	}
	if out.RewriteFrom != "" {
		if err := c.checkInternal("outbound.rewrite_from", out.RewriteFrom); err != nil {
			return err
		}
	}
	return c.checkDownstream("outbound.downstream", out.Downstream)
}

// validateAuthUsers never echoes a password_hash: a rejected one may be
// the plaintext password.
func (c *Config) validateAuthUsers() error {
	seen := map[string]bool{}
	for i, u := range c.Outbound.AuthUsers {
		f := fmt.Sprintf("outbound.auth_users[%d]", i)
		if u.Name == "" {
			return c.fail(f+".name", "must not be empty")
		}
		if seen[u.Name] {
			return c.fail(f+".name", "%q is listed twice", u.Name)
		}
		seen[u.Name] = true
		if !bcryptRE.MatchString(u.PasswordHash) && !argon2idRE.MatchString(u.PasswordHash) {
			return c.fail(f+".password_hash", "store a bcrypt or argon2id hash, not the password ($2b$… or $argon2id$v=19$…)")
		}
	}
	return nil
}

func (c *Config) checkHostname(field, name string) error {
	if name != "" && !hostRE.MatchString(name) {
		return c.fail(field, "must be a lower-case ASCII host name, got %q", name)
	}
	return nil
}

func (c *Config) checkServerTLS(field string, t ServerTLS) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return c.fail(field, "set both cert_file and key_file, or neither (a self-signed certificate)")
	}
	return nil
}

func (c *Config) checkDownstream(field string, d Downstream) error {
	hosts, err := c.checkDownstreamTargets(field, d)
	if err != nil {
		return err
	}
	if err := c.checkDownstreamIdentity(field, d); err != nil {
		return err
	}
	switch d.TLS {
	case "verify":
		return nil
	case "insecure":
	default:
		return c.fail(field+".tls", "must be verify or insecure, got %q", d.TLS)
	}
	if d.CAFile != "" || d.ServerName != "" {
		return c.fail(field+".tls", "ca_file and server_name are used only with tls: verify")
	}
	for _, host := range hosts {
		if !isLoopback(host) && !d.AllowInsecureRemote {
			return c.fail(field+".tls", "insecure (plain SMTP) to non-loopback %q would expose every message; use verify, or set allow_insecure_remote: true", host)
		}
	}
	return nil
}

// isLoopback does not resolve names: only localhost and loopback IPs count.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkHostPort parses host:port with a numeric port of at least minPort
// and returns the host.
func (c *Config) checkHostPort(field, addr string, minPort int) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", c.fail(field, "must be host:port like 127.0.0.1:2525, got %q", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < minPort || p > 65535 {
		return "", c.fail(field, "port must be a number from %d to 65535, got %q", minPort, port)
	}
	return host, nil
}

// validateListeners parses the three listen addresses and refuses two on
// one port where the hosts are equal or one is a wildcard. Port 0 (any
// free port, for tests) never conflicts.
func (c *Config) validateListeners() error {
	type listener struct{ field, host, port string }
	var seen []listener
	for _, l := range []struct{ field, addr string }{
		{"inbound.listen", c.Inbound.Listen}, {"outbound.listen", c.Outbound.Listen}, {"admin.listen", c.Admin.Listen},
	} {
		if _, err := c.checkHostPort(l.field, l.addr, 0); err != nil {
			return err
		}
		host, port, _ := net.SplitHostPort(l.addr)
		for _, s := range seen {
			if port != "0" && port == s.port && (host == s.host || isWildcard(host) || isWildcard(s.host)) {
				return c.fail(l.field, "%s is also %s", l.addr, s.field)
			}
		}
		seen = append(seen, listener{l.field, host, port})
	}
	return nil
}

func isWildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

func (c *Config) validateSMTP() error {
	s := c.SMTP
	for _, lim := range []struct {
		field    string
		val, min int64
	}{
		{"max_message_bytes", s.MaxMessageBytes, 1},
		{"max_recipients", int64(s.MaxRecipients), 1},
		// RFC 5321 4.5.3.1.6: a line of 1000 octets must be accepted.
		{"max_line_length", int64(s.MaxLineLength), 1000},
		{"max_connections", int64(s.MaxConnections), 1},
		{"max_connections_per_ip", int64(s.MaxConnectionsPerIP), 1},
		{"downstream_pool_size", int64(s.DownstreamPoolSize), 1},
	} {
		if lim.val < lim.min {
			return c.fail("smtp."+lim.field, "must be at least %d, got %d", lim.min, lim.val)
		}
	}
	if s.MaxConnectionsPerIP > s.MaxConnections {
		return c.fail("smtp.max_connections_per_ip", "must not exceed max_connections")
	}
	if err := c.validateRouteConnLimits(); err != nil {
		return err
	}
	if s.RefusalCode != 451 && s.RefusalCode != 554 {
		return c.fail("smtp.refusal_code", "must be 554 or 451, got %d", s.RefusalCode)
	}
	return c.checkTimeouts()
}

func (c *Config) checkTimeouts() error {
	s := c.SMTP
	for _, t := range []struct {
		field string
		val   time.Duration
	}{
		{"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout},
		{"data_timeout", s.DataTimeout}, {"downstream_timeout", s.DownstreamTimeout},
		{"shutdown_timeout", s.ShutdownTimeout}, {"max_session_duration", s.MaxSessionDuration},
	} {
		if t.val <= 0 {
			return c.fail("smtp."+t.field, "must be a positive duration like 60s, got %s", t.val)
		}
	}
	return nil
}

// validateRouteConnLimits checks each route's own connection limits: zero
// inherits the smtp section's, a negative value is a mistake, and a route's
// per-IP limit (inherited or not) must not exceed its total.
func (c *Config) validateRouteConnLimits() error {
	for _, r := range []struct {
		name     string
		own, eff ConnLimits
	}{
		{"inbound", ConnLimits{c.Inbound.MaxConnections, c.Inbound.MaxConnectionsPerIP}, c.InboundConnLimits()},
		{"outbound", ConnLimits{c.Outbound.MaxConnections, c.Outbound.MaxConnectionsPerIP}, c.OutboundConnLimits()},
	} {
		if r.own.MaxConnections < 0 {
			return c.fail(r.name+".max_connections", "must be 0 (smtp.max_connections) or positive, got %d", r.own.MaxConnections)
		}
		if r.own.MaxConnectionsPerIP < 0 {
			return c.fail(r.name+".max_connections_per_ip", "must be 0 (smtp.max_connections_per_ip) or positive, got %d", r.own.MaxConnectionsPerIP)
		}
		if r.eff.MaxConnectionsPerIP > r.eff.MaxConnections {
			return c.fail(r.name+".max_connections_per_ip", "must not exceed the route's max_connections")
		}
	}
	return nil
}

// checkNewTokenRate: both rates positive, the per-client one within the
// total (a larger one could never be reached).
func (c *Config) checkNewTokenRate(r NewTokenRate) error {
	if r.PerIP < 1 {
		return c.fail("inbound.new_token_rate.per_ip", "must be at least 1 (new tokens per minute), got %d", r.PerIP)
	}
	if r.Total < 1 {
		return c.fail("inbound.new_token_rate.total", "must be at least 1 (new tokens per minute), got %d", r.Total)
	}
	if r.PerIP > r.Total {
		return c.fail("inbound.new_token_rate.per_ip", "must not exceed total (%d), got %d", r.Total, r.PerIP)
	}
	return nil
}
