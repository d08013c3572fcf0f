package smtp

import (
	"strings"

	"github.com/tokenproxy/tokenproxy/address"
)

// postmaster returns the internal mailbox that mail to "postmaster" goes
// to (InboundOptions.Postmaster), and whether to is such mail. RFC 5321
// §4.5.1: a server MUST accept "postmaster" (any case) for every domain it
// accepts mail for, and the bare "<Postmaster>" without domain (go-smtp,
// patched, passes it as "postmaster"). The domains here are the relay
// domain and those of the mailboxes' public addresses. A mailbox listed
// for a postmaster address keeps its own destination. No Postmaster: the
// bare "postmaster" gives ("", true), refused like an unknown mailbox;
// any other address is left to the mailboxes.
func (p *inboundPolicy) postmaster(to string) (string, bool) {
	if strings.EqualFold(to, "postmaster") {
		return p.o.Postmaster, true
	}
	if p.o.Postmaster == "" {
		return "", false
	}
	a, err := address.Normalize(to, p.o.LocalCase)
	if err != nil || !strings.EqualFold(a.Local, "postmaster") {
		return "", false
	}
	if _, listed := p.o.Mailboxes[a.String()]; listed {
		return "", false
	}
	if a.Domain == p.o.Map.Format().Domain || p.mailboxDomain(a.Domain) {
		return p.o.Postmaster, true
	}
	return "", false
}

// mailboxDomain reports whether domain is the domain of a mailbox's public
// address (the keys of Mailboxes are normalized: lower-case domains).
func (p *inboundPolicy) mailboxDomain(domain string) bool {
	for public := range p.o.Mailboxes {
		if public[strings.LastIndexByte(public, '@')+1:] == domain {
			return true
		}
	}
	return false
}
