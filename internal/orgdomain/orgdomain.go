package orgdomain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Normalize returns a domain in the form identifiers are compared in:
// lower-case A-labels (IDNA), without a trailing dot. Names IDNA refuses are
// only lower-cased, so they still compare equal to themselves.
func Normalize(d string) string {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		d = a
	}
	return strings.ToLower(d)
}

// Of returns the Organizational Domain of a (normalized) domain: the
// public suffix plus one label, RFC 7489 §3.2. A domain that is itself a
// public suffix, or that the list cannot place, is its own organizational
// domain.
func Of(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// Aligned reports whether an authenticated domain is in alignment with the
// RFC5322.From domain (both normalized), RFC 7489 §3.1: in strict mode the
// two must be equal, in relaxed mode share their organizational domain.
func Aligned(authDomain, fromDomain string, strict bool) bool {
	if authDomain == "" || fromDomain == "" {
		return false
	}
	if strict {
		return authDomain == fromDomain
	}
	return Of(authDomain) == Of(fromDomain)
}

// CheckAlignment checks, for configuration load, that mail From fromAddr
// ("user@domain" or "Name <user@domain>") signed by signingDomain passes
// DMARC's relaxed DKIM alignment (RFC 7489 §3.1.1): both domains have the
// same organizational domain. Without it, receivers enforcing DMARC on the
// From domain would treat our signature as if there were none.
//
// The error is the plain reason, with no package prefix: the caller names
// the configuration field.
func CheckAlignment(fromAddr, signingDomain string) error {
	a, err := mail.ParseAddress(fromAddr)
	if err != nil {
		return fmt.Errorf("From address: %w", err)
	}
	from := Normalize(domainOf(a.Address))
	signing := Normalize(signingDomain)
	if from == "" || signing == "" {
		return errors.New("From address or signing domain has no domain")
	}
	if !Aligned(signing, from, false) {
		return fmt.Errorf("From domain %s does not align with DKIM signing domain %s: organizational domains %s and %s differ (RFC 7489 §3.1.1)",
			from, signing, Of(from), Of(signing))
	}
	return nil
}

// domainOf returns what follows the last @ of addr, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}
