package policy

import (
	"fmt"
	"strings"
)

// validateRelays checks inbound.trusted_relays, the trusted authserv-ids
// and inbound.postmaster (config_relay.go).
func (c *Config) validateRelays() error {
	for i, s := range c.Inbound.TrustedRelays {
		f := fmt.Sprintf("inbound.trusted_relays[%d]", i)
		p, err := ParseNetwork(s)
		if err != nil {
			return c.fail(f, "must be a CIDR prefix like 192.0.2.0/28 or an address, got %q", s)
		}
		min := minRelayBits4
		if p.Addr().Is6() {
			min = minRelayBits6
		}
		if p.Bits() < min {
			return c.fail(f, "%q is too wide: a trusted relay says where mail came from, list only the company gateways", s)
		}
	}
	if err := c.validateTrustedAuthservIDs(); err != nil {
		return err
	}
	if pm := c.Inbound.Postmaster; pm != "" {
		return c.checkInternal("inbound.postmaster", pm)
	}
	return nil
}

func (c *Config) validateTrustedAuthservIDs() error {
	ids := c.Inbound.AuthCheck.TrustedAuthservIDs
	if len(ids) > 0 && len(c.Inbound.TrustedRelays) == 0 {
		return c.fail("inbound.auth_check.trusted_authserv_ids", "needs inbound.trusted_relays: a relay's results count only on its own connections")
	}
	own := c.Inbound.AuthCheck.AuthservID
	if own == "" {
		own = c.Inbound.Hostname
	}
	for i, id := range ids {
		f := fmt.Sprintf("inbound.auth_check.trusted_authserv_ids[%d]", i)
		if !hostRE.MatchString(id) {
			return c.fail(f, "must be a lower-case authserv-id like gw.company.example, got %q", id)
		}
		if own != "" && strings.EqualFold(id, own) {
			return c.fail(f, "%q is our own authserv-id: fields claiming it are always removed (RFC 8601 §5)", id)
		}
	}
	return nil
}
