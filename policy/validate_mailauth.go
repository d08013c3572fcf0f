package policy

import (
	"fmt"
	"net/mail"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
)

var (
	// selectorRE: a DKIM selector is one or more DNS labels (RFC 6376
	// §3.1), written lower-case like the domains here.
	selectorRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	// fieldNameRE: printable ASCII but colon (RFC 5322 §3.6.8).
	fieldNameRE = regexp.MustCompile(`^[!-9;-~]+$`)
)

// maxSPFIncludes: each include: costs a DNS look-up, and SPF allows ten
// for the whole evaluation (RFC 7208 §4.6.4).
const maxSPFIncludes = 10

// maxMTASTSAge is the largest max_age RFC 8461 §3.2 allows (about a year).
const maxMTASTSAge = 31557600 * time.Second

func (c *Config) validateMailAuth() error {
	for _, check := range []func() error{c.validateAuthCheck, c.validateARC, c.validateDKIM, c.validateSPF, c.validateDNS} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateAuthCheck() error {
	a := c.Inbound.AuthCheck
	if err := c.checkHostname("inbound.auth_check.authserv_id", a.AuthservID); err != nil {
		return err
	}
	if a.DNSServer != "" {
		host, err := c.checkHostPort("inbound.auth_check.dns_server", a.DNSServer, 1)
		if err != nil {
			return err
		}
		// A resolver named by a host name would need a resolver first.
		if _, err := netip.ParseAddr(host); err != nil {
			return c.fail("inbound.auth_check.dns_server", "must be an IP address and port like 127.0.0.53:53, got %q", a.DNSServer)
		}
	}
	if a.DNSTimeout <= 0 {
		return c.fail("inbound.auth_check.dns_timeout", "must be a positive duration like 5s, got %s", a.DNSTimeout)
	}
	if a.DMARCRejectAction != "reject" && a.DMARCRejectAction != "tag" {
		return c.fail("inbound.auth_check.dmarc_reject_action", "must be reject or tag, got %q", a.DMARCRejectAction)
	}
	return nil
}

func (c *Config) validateDKIM() error {
	d := c.Outbound.DKIM
	if d.Domain == "" {
		if d.Selector != "" || d.KeyFile != "" || d.VaultKey != "" || len(d.Headers) > 0 {
			return c.fail("outbound.dkim.domain", "must be set when another dkim field is (no domain: no signing)")
		}
		return nil
	}
	if !hostRE.MatchString(d.Domain) {
		return c.fail("outbound.dkim.domain", "must be a lower-case ASCII host name, got %q", d.Domain)
	}
	if !selectorRE.MatchString(d.Selector) {
		return c.fail("outbound.dkim.selector", "must be lower-case DNS labels like tp1 or 2025-06, got %q", d.Selector)
	}
	if err := c.checkDKIMKey(d); err != nil {
		return err
	}
	if err := c.checkDKIMHeaders(d.Headers); err != nil {
		return err
	}
	return c.checkAlignment(d.Domain)
}

func (c *Config) checkDKIMKey(d DKIM) error {
	if (d.KeyFile == "") == (d.VaultKey == "") {
		return c.fail("outbound.dkim.key_file", "set exactly one of key_file and vault_key")
	}
	if d.VaultKey == "" {
		return nil
	}
	if strings.Contains(d.VaultKey, "/") {
		return c.fail("outbound.dkim.vault_key", "a transit key name has no slash, got %q", d.VaultKey)
	}
	if c.Keys.Provider != "vault" {
		return c.fail("outbound.dkim.vault_key", "needs keys.provider: vault (the signer uses keys.vault's connection and mount)")
	}
	return nil
}

// checkDKIMHeaders: From must be signed (RFC 6376 §5.4).
func (c *Config) checkDKIMHeaders(headers []string) error {
	if len(headers) == 0 {
		return nil
	}
	from := false
	for i, h := range headers {
		if !fieldNameRE.MatchString(h) {
			return c.fail(fmt.Sprintf("outbound.dkim.headers[%d]", i), "must be a header field name, got %q", h)
		}
		from = from || strings.EqualFold(h, "From")
	}
	if !from {
		return c.fail("outbound.dkim.headers", "must include From (RFC 6376 §5.4)")
	}
	return nil
}

// checkAlignment: a signature whose d= does not align with the From domain
// counts for nothing under DMARC (RFC 7489 §3.1.1), so receivers enforcing
// the company's p=reject would refuse every reply.
func (c *Config) checkAlignment(domain string) error {
	for _, addr := range c.SenderAddresses() {
		if err := orgdomain.CheckAlignment(addr, domain); err != nil {
			return c.fail("outbound.dkim.domain", "replies From %s: %s", addr, err)
		}
	}
	return nil
}

func (c *Config) validateSPF() error {
	o := c.Outbound
	for i, n := range o.SPFNetworks {
		if _, err := ParseNetwork(n); err != nil {
			return c.fail(fmt.Sprintf("outbound.spf_networks[%d]", i), "must be a CIDR prefix or an address like 192.0.2.0/24, got %q", n)
		}
	}
	if len(o.SPFIncludes) > maxSPFIncludes {
		return c.fail("outbound.spf_includes", "at most %d (SPF's DNS look-up limit, RFC 7208 §4.6.4)", maxSPFIncludes)
	}
	for i, d := range o.SPFIncludes {
		if !hostRE.MatchString(d) {
			return c.fail(fmt.Sprintf("outbound.spf_includes[%d]", i), "must be a lower-case ASCII host name, got %q", d)
		}
	}
	return nil
}

func (c *Config) validateDNS() error {
	d := c.DNS
	for i, mx := range d.MX {
		if !hostRE.MatchString(strings.TrimPrefix(mx, "*.")) {
			return c.fail(fmt.Sprintf("dns.mx[%d]", i), "must be a lower-case host name or *.domain (RFC 8461 §3.2), got %q", mx)
		}
	}
	switch d.DMARCPolicy {
	case "none", "quarantine", "reject":
	default:
		return c.fail("dns.dmarc_policy", "must be none, quarantine or reject, got %q", d.DMARCPolicy)
	}
	if err := c.checkReportAddresses("dns.dmarc_reports", d.DMARCReports); err != nil {
		return err
	}
	if err := c.checkReportAddresses("dns.tls_reports", d.TLSReports); err != nil {
		return err
	}
	if d.MTASTSMaxAge <= 0 || d.MTASTSMaxAge > maxMTASTSAge {
		return c.fail("dns.mta_sts_max_age", "must be positive and at most 8766h (RFC 8461 §3.2), got %s", d.MTASTSMaxAge)
	}
	return nil
}

// checkReportAddresses accepts plain addresses: they become mailto: URIs.
func (c *Config) checkReportAddresses(field string, addrs []string) error {
	for i, addr := range addrs {
		a, err := mail.ParseAddress(addr)
		if err != nil || a.Address != addr || a.Name != "" {
			return c.fail(fmt.Sprintf("%s[%d]", field, i), "must be a plain address like dmarc@company.example, got %q", addr)
		}
	}
	return nil
}
