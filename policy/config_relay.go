package policy

import "net/netip"

// The inbound route behind a company gateway (issue 16):
//
//   - inbound.trusted_relays: CIDR prefixes (or single addresses) of the
//     company gateways that relay customer mail to the inbound route. For
//     a connection from one of them, SPF and the HELO check judge the first
//     hop outside them, read from the Received fields they wrote or from
//     their XFORWARD; they alone may send XFORWARD and XCLIENT, and a MAIL
//     FROM in the relay domain. Empty (the default): no client is trusted.
//   - inbound.auth_check.trusted_authserv_ids: the authserv-ids of those
//     gateways' own Authentication-Results fields (RFC 8601 §2.5). On a
//     connection from a trusted relay, the topmost such field may stand in
//     for our SPF and DKIM results when DMARC fails without them (the
//     gateway tagged the subject, or judged SPF for a hop we cannot see).
//     From any other client such fields are forgeries and are removed
//     (RFC 8601 §5). Needs trusted_relays.
//   - inbound.postmaster: the internal mailbox that RFC 5321 §4.5.1
//     "postmaster" (and postmaster@ the relay domain and the mailboxes'
//     domains) is delivered to, through inbound.downstream. Empty: mail to
//     postmaster is refused like any other recipient.

// Minimum prefix lengths of a trusted relay network: a shorter one trusts
// a good part of the internet to say where mail came from.
const (
	minRelayBits4 = 8
	minRelayBits6 = 16
)

// TrustedRelayPrefixes returns inbound.trusted_relays parsed and masked;
// Validate has checked them.
func (c *Config) TrustedRelayPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.Inbound.TrustedRelays {
		if p, err := ParseNetwork(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
