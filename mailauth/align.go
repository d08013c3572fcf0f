package mailauth

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// normDomain returns a domain in the form identifiers are compared in:
// lower-case A-labels (IDNA), without a trailing dot. Names IDNA refuses are
// only lower-cased, so they still compare equal to themselves.
func normDomain(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		d = a
	}
	return strings.ToLower(d)
}

// orgDomain returns the Organizational Domain of a (normalized) domain: the
// public suffix plus one label, RFC 7489 §3.2. A domain that is itself a
// public suffix, or that the list cannot place, is its own organizational
// domain.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is in alignment with the
// RFC5322.From domain (both normalized), RFC 7489 §3.1: in strict mode the
// two must be equal, in relaxed mode share their organizational domain.
func aligned(authDomain, fromDomain string, strict bool) bool {
	if authDomain == "" || fromDomain == "" {
		return false
	}
	if strict {
		return authDomain == fromDomain
	}
	return orgDomain(authDomain) == orgDomain(fromDomain)
}

// CheckAlignment checks, for configuration load, that mail From fromAddr
// ("user@domain" or "Name <user@domain>") signed by signingDomain passes
// DMARC's relaxed DKIM alignment (RFC 7489 §3.1.1): both domains have the
// same organizational domain. Without it, receivers enforcing DMARC on the
// From domain would treat our signature as if there were none.
func CheckAlignment(fromAddr, signingDomain string) error {
	a, err := mail.ParseAddress(fromAddr)
	if err != nil {
		return fmt.Errorf("mailauth: From address: %w", err)
	}
	from := normDomain(domainOf(a.Address))
	signing := normDomain(signingDomain)
	if from == "" || signing == "" {
		return errors.New("mailauth: From address or signing domain has no domain")
	}
	if !aligned(signing, from, false) {
		return fmt.Errorf("mailauth: From domain %s does not align with DKIM signing domain %s: organizational domains %s and %s differ (RFC 7489 §3.1.1)",
			from, signing, orgDomain(from), orgDomain(signing))
	}
	return nil
}
