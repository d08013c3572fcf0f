package mailauth

import (
	"context"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
)

// standIn is a source of SPF and DKIM results that another, trusted party
// reached for this message: they may stand in for ours when DMARC fails
// without them, as forwarding through a company gateway breaks SPF (the
// gateway's IP) and DKIM (a subject tag, a disclaimer). Its results are
// never reported as ours: when they would make DMARC pass, DMARC stays
// the fail our own checks found and the source is reported as the local
// policy that overrode it (applyStandIns), as for a trusted ARC sealer.
//
// This is the seam of the trusted sources: a trusted relay's own
// Authentication-Results (trustedAuthResults, below); a trusted sealer's
// ARC-Authentication-Results (RFC 8617) plugs in beside it, in standIns.
// A source that needs the body (an ARC chain's message signatures) does
// its work while Verify streams the message and only hands over its
// results here.
type standIn interface {
	// results returns the source's passes for this message and who reached
	// them (the relay's authserv-id); by is "" when it has none.
	results(in VerifyInput, fields []field) (by string, spf []SPFVerdict, dkim []DKIMVerdict)
}

// standIns returns the trusted sources for a message. A relay's own
// Authentication-Results count only on a connection from a trusted relay
// (rv != nil): from anyone else they are forgeries (RFC 8601 §5).
func standIns(in VerifyInput, rv *RelayVerdict) []standIn {
	var out []standIn
	if rv != nil && len(in.Trust.AuthservIDs) > 0 {
		out = append(out, trustedAuthResults(in.Trust.AuthservIDs))
	}
	// A trusted ARC sealer's results (issue 16 item 2) are appended here:
	// a sealer is trusted by its signing domain, whoever connects.
	return out
}

// applyStandIns re-evaluates a DMARC failure with each trusted source's
// results added to ours. When they turn it into a pass, the source is
// recorded as the override (DMARCVerdict.AuthresOverride); our verdicts,
// DMARC's fail included, stay as our own checks found them: the source
// vouched, we did not verify (RFC 7489 §6.7 local policy; large receivers
// report it so, e.g. dmarc=fail with compauth=pass reason=130).
func (v *Verdicts) applyStandIns(ctx context.Context, r *Resolver, in VerifyInput, fields []field, sources []standIn) {
	if v.DMARC.Result != ResultFail || v.DMARC.Overridden() {
		return
	}
	for _, s := range sources {
		by, sp, dk := s.results(in, fields)
		if by == "" || len(sp)+len(dk) == 0 {
			continue
		}
		spfV := append(v.SPF[:len(v.SPF):len(v.SPF)], sp...)
		dkimV := append(v.DKIM[:len(v.DKIM):len(v.DKIM)], dk...)
		if evalDMARC(ctx, r, fields, spfV, dkimV).Result == ResultPass {
			v.DMARC.AuthresOverride = by
			return
		}
	}
}

// trustedAuthResults reads the topmost Authentication-Results field whose
// authserv-id is one of ids: the one the nearest trusted relay wrote (RFC
// 8601 §5 asks that relay to have removed forged ones of its own id).
type trustedAuthResults []string

// results returns the passes of that field that name this message's
// identities: spf=pass for the MAIL FROM domain (or the HELO, for the null
// sender), dkim=pass with the header.d it passed for. Anything else in it
// (fail, a domain of another message) is not taken; a field that does not
// parse is not read at all.
func (ids trustedAuthResults) results(in VerifyInput, fields []field) (string, []SPFVerdict, []DKIMVerdict) {
	id, res, ok := ids.topmost(fields)
	if !ok {
		return "", nil, nil
	}
	var spfV []SPFVerdict
	var dkimV []DKIMVerdict
	for _, r := range res {
		switch r := r.(type) {
		case *authres.SPFResult:
			if sv, ok := spfStandIn(r, in); ok {
				spfV = append(spfV, sv)
			}
		case *authres.DKIMResult:
			if r.Value == authres.ResultPass && r.Domain != "" {
				dkimV = append(dkimV, DKIMVerdict{Result: ResultPass, Domain: orgdomain.Normalize(r.Domain),
					Identifier: r.Identifier})
			}
		}
	}
	return id, spfV, dkimV
}

// spfStandIn takes a trusted spf=pass when it is for this message's
// envelope: the domain of its smtp.mailfrom is that of our MAIL FROM (the
// relay keeps the envelope), or for the null sender its smtp.helo is the
// origin's HELO.
func spfStandIn(r *authres.SPFResult, in VerifyInput) (SPFVerdict, bool) {
	if r.Value != authres.ResultPass {
		return SPFVerdict{}, false
	}
	if in.MailFrom == "" {
		return SPFVerdict{}, false // HELO identities are not carried over: too weak to stand in
	}
	want := orgdomain.Normalize(domainOf(in.MailFrom))
	got := r.From
	if i := strings.LastIndexByte(got, '@'); i >= 0 {
		got = got[i+1:]
	}
	if want == "" || orgdomain.Normalize(got) != want {
		return SPFVerdict{}, false
	}
	return SPFVerdict{Result: ResultPass, Identity: "mailfrom", Domain: want, MailFrom: in.MailFrom}, true
}

// topmost finds and parses the first Authentication-Results field of a
// trusted authserv-id. Comments are removed first: go-msgauth's parser
// does not skip them ("dkim=pass (2048-bit key) header.d=…").
func (ids trustedAuthResults) topmost(fields []field) (string, []authres.Result, bool) {
	for _, f := range fieldsNamed(fields, "Authentication-Results") {
		got, ok := parseAuthservID([]byte(f.value()))
		if !ok || !containsFold(ids, got) {
			continue
		}
		_, res, err := authres.Parse(stripComments(f.value())) // arc_trust.go
		if err != nil {
			return "", nil, false
		}
		return strings.ToLower(got), res, true
	}
	return "", nil, false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
