package mailauth

import (
	"context"
	"errors"

	"github.com/emersion/go-msgauth/dmarc"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
)

// evalDMARC evaluates DMARC for a message whose SPF and DKIM results are
// known (RFC 7489 §6.6.2, §6.6.3).
func evalDMARC(ctx context.Context, r *Resolver, fields []field, spfV []SPFVerdict, dkimV []DKIMVerdict) DMARCVerdict {
	from, err := fromDomain(fields)
	if err != nil {
		// RFC 7489 §6.6.1: no single author domain to evaluate.
		return DMARCVerdict{Result: ResultPermError, Reason: err.Error()}
	}
	v := DMARCVerdict{FromDomain: from}
	rec, at, err := lookupPolicy(ctx, r, from)
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		v.Result, v.Reason = ResultNone, "no DMARC record"
		return v
	case dmarc.IsTempFail(err):
		v.Result, v.Reason = ResultTempError, "DMARC record unavailable"
		return v
	case err != nil:
		v.Result, v.Reason = ResultPermError, "malformed DMARC record"
		return v
	}
	v.PolicyDomain, v.Policy, v.Percent = at, policyFor(rec, from, at), percent(rec)
	strictSPF := rec.SPFAlignment == dmarc.AlignmentStrict
	strictDKIM := rec.DKIMAlignment == dmarc.AlignmentStrict
	v.strictSPF, v.strictDKIM = strictSPF, strictDKIM
	v.SPFAligned = spfAligned(spfV, from, strictSPF, ResultPass)
	v.DKIMAligned = dkimAligned(dkimV, from, strictDKIM, ResultPass)
	switch {
	case v.SPFAligned || v.DKIMAligned:
		v.Result = ResultPass
	case spfAligned(spfV, from, strictSPF, ResultTempError) || dkimAligned(dkimV, from, strictDKIM, ResultTempError):
		// An aligned identifier could not be checked: the message might
		// pass on a retry. Unknown failure is temporary, never a reject.
		v.Result, v.Reason = ResultTempError, "aligned identifier temporarily unverifiable"
	default:
		v.Result, v.Reason = ResultFail, "no aligned identifier passed"
	}
	return v
}

// lookupPolicy finds the DMARC record of the From domain, or failing that of
// its organizational domain (RFC 7489 §6.6.3), and says where it was found.
func lookupPolicy(ctx context.Context, r *Resolver, from string) (*dmarc.Record, string, error) {
	opts := &dmarc.LookupOptions{LookupTXT: r.txtFunc(ctx)}
	rec, err := dmarc.LookupWithOptions(from, opts)
	if !errors.Is(err, dmarc.ErrNoPolicy) {
		return rec, from, err
	}
	org := orgdomain.Of(from)
	if org == from {
		return nil, "", err
	}
	rec, err = dmarc.LookupWithOptions(org, opts)
	return rec, org, err
}

// policyFor returns the policy that applies to mail from the From domain:
// sp= when the record is the organizational domain's and the From domain is
// a subdomain of it, else p= (RFC 7489 §6.3).
func policyFor(rec *dmarc.Record, from, at string) Policy {
	if at != from && rec.SubdomainPolicy != "" {
		return Policy(rec.SubdomainPolicy)
	}
	return Policy(rec.Policy)
}

func percent(rec *dmarc.Record) int {
	if rec.Percent == nil {
		return 100
	}
	return *rec.Percent
}

// spfAligned reports whether an SPF check with result want authenticated a
// domain aligned with the From domain (RFC 7489 §3.1.2). The identity is
// the MAIL FROM domain, or HELO's for a null reverse-path (RFC 7489 §4.1,
// RFC 7208 §2.4).
func spfAligned(vs []SPFVerdict, from string, strict bool, want Result) bool {
	for _, s := range vs {
		if s.Result == want && orgdomain.Aligned(s.Domain, from, strict) {
			return true
		}
	}
	return false
}

// dkimAligned reports whether a DKIM signature with result want has a d=
// aligned with the From domain (RFC 7489 §3.1.1).
func dkimAligned(vs []DKIMVerdict, from string, strict bool, want Result) bool {
	for _, d := range vs {
		if d.Result == want && orgdomain.Aligned(d.Domain, from, strict) {
			return true
		}
	}
	return false
}
