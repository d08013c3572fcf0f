package policy

import (
	"net/netip"
	"strings"
	"time"
)

// AuthCheck configures the inbound route's check of SPF, DKIM and DMARC on
// the customer's message as received, reported to the CRM in an
// Authentication-Results field (RFC 8601).
type AuthCheck struct {
	Enabled bool `yaml:"enabled"`
	// AuthservID names our verdicts (RFC 8601 §2.5); empty: the inbound
	// route's host name. Incoming fields claiming it are removed.
	AuthservID string `yaml:"authserv_id"`
	// DNSServer is the resolver asked, as IP:port; empty: the system's.
	DNSServer  string        `yaml:"dns_server"`
	DNSTimeout time.Duration `yaml:"dns_timeout"` // per look-up
	// DMARCRejectAction is what a DMARC failure under p=reject gets:
	// reject (550 5.7.1) or tag (relayed with the verdict).
	DMARCRejectAction string `yaml:"dmarc_reject_action"`
	// TrustedAuthservIDs: config_relay.go.
	TrustedAuthservIDs []string `yaml:"trusted_authserv_ids"`
	// TrustedARCSealers and ARCSeal: see config_arc.go.
	TrustedARCSealers []string `yaml:"trusted_arc_sealers"`
	ARCSeal           ARCSeal  `yaml:"arc_seal"`
}

// DKIM configures the outbound route's signature. An empty Domain means no
// signing; otherwise exactly one key source is set.
type DKIM struct {
	Domain   string   `yaml:"domain"`    // d=, aligned with the From domains
	Selector string   `yaml:"selector"`  // s=: <selector>._domainkey.<domain>
	KeyFile  string   `yaml:"key_file"`  // PEM private key, RSA ≥ 2048 bits or Ed25519
	VaultKey string   `yaml:"vault_key"` // a transit key name, on keys.vault's connection
	Headers  []string `yaml:"headers"`   // signed fields; empty: the recommended set
}

// DNS configures the records `proxy dns` prints and checks.
type DNS struct {
	// MX are the relay domain's MX host names (or *.domain patterns) the
	// MTA-STS policy lists; empty: inbound.hostname.
	MX           []string      `yaml:"mx"`
	DMARCPolicy  string        `yaml:"dmarc_policy"`  // none | quarantine | reject
	DMARCReports []string      `yaml:"dmarc_reports"` // rua= addresses
	TLSReports   []string      `yaml:"tls_reports"`   // TLS-RPT rua= addresses
	MTASTSMaxAge time.Duration `yaml:"mta_sts_max_age"`
}

// defaultMailAuth are the mail authentication defaults of Defaults().
func defaultMailAuth(c *Config) {
	c.Inbound.AuthCheck = AuthCheck{Enabled: true, DNSTimeout: 5 * time.Second, DMARCRejectAction: "reject"}
	c.DNS = DNS{DMARCPolicy: "reject", MTASTSMaxAge: 7 * 24 * time.Hour}
}

// SenderAddresses are the From addresses the outbound route sends under:
// rewrite_from when set, else every mailbox's public address. Company
// addresses, never customer data.
func (c *Config) SenderAddresses() []string {
	if c.Outbound.RewriteFrom != "" {
		return []string{c.Outbound.RewriteFrom}
	}
	var out []string
	for _, m := range c.Mailboxes {
		out = append(out, m.Public)
	}
	return out
}

// SenderDomains are the lower-case domains of SenderAddresses, each once.
func (c *Config) SenderDomains() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range c.SenderAddresses() {
		d := strings.ToLower(a[strings.LastIndexByte(a, '@')+1:])
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// ParseNetwork parses an SPF network: a CIDR prefix, or a single address
// (a /32 or /128).
func ParseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
