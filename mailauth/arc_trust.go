package mailauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
)

// applyARCOverride lets a trusted sealer's results stand in for a DMARC
// failure, as large receivers use ARC (RFC 8617 §7.2: a receiver may use
// a chain it trusts in its local policy; RFC 7489 §7.2.1 calls this
// override trusted_forwarder). It applies only when:
//
//   - DMARC failed (not a temporary error, not a missing policy);
//   - the chain passed;
//   - the sealers from the newest instance down to the one used are all
//     trusted: an untrusted hop after a trusted one could have replaced
//     the content under the trusted sealer's verdicts, and sealed it;
//   - that sealer's ARC-Authentication-Results report dmarc=pass for the
//     From domain, or dkim=pass or spf=pass for a domain aligned with it
//     (with the alignment mode of the domain's DMARC record).
//
// A chain whose keys were temporarily unavailable, from a trusted sealer,
// makes the DMARC failure a temperror: the message may pass on a retry.
func applyARCOverride(v *Verdicts, trusted []string) {
	if v.DMARC.Result != ResultFail || v.DMARC.Overridden() || len(trusted) == 0 {
		return
	}
	sets := v.ARC.Sets
	for i := len(sets) - 1; i >= 0 && isTrusted(sets[i].Domain, trusted); i-- {
		if v.ARC.Result == ResultTempError {
			v.DMARC.Result, v.DMARC.Reason = ResultTempError, "trusted ARC chain temporarily unverifiable"
			return
		}
		if v.ARC.Result != ResultPass {
			return
		}
		if vouches(sets[i].results, v.DMARC) {
			v.ARC.Trusted = sets[i].Instance
			v.DMARC.ARCOverride = sets[i].Domain
			return
		}
	}
}

func isTrusted(domain string, trusted []string) bool {
	for _, t := range trusted {
		if strings.EqualFold(domain, strings.TrimSuffix(t, ".")) {
			return true
		}
	}
	return false
}

// vouches reports whether a sealer's results (the payload of its
// ARC-Authentication-Results, "authserv-id; results") show an aligned
// pass for the From domain d evaluated.
func vouches(results string, d DMARCVerdict) bool {
	_, rs, err := authres.Parse(stripComments(results))
	if err != nil {
		return false
	}
	for _, r := range rs {
		switch r := r.(type) {
		case *authres.DMARCResult:
			if r.Value == authres.ResultPass && orgdomain.Normalize(r.From) == d.FromDomain {
				return true
			}
		case *authres.DKIMResult:
			if r.Value == authres.ResultPass && orgdomain.Aligned(orgdomain.Normalize(r.Domain), d.FromDomain, d.strictDKIM) {
				return true
			}
		case *authres.SPFResult:
			dom := orgdomain.Normalize(domainOf(r.From))
			if dom == "" {
				dom = orgdomain.Normalize(r.From) // smtp.mailfrom may be a bare domain
			}
			if r.Value == authres.ResultPass && orgdomain.Aligned(dom, d.FromDomain, d.strictSPF) {
				return true
			}
		}
	}
	return false
}

// stripComments removes RFC 5322 comments outside quoted strings: the
// results parser of go-msgauth does not skip them, and a ";" in one would
// split a result.
func stripComments(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			i++
			c = s[i]
		case c == '"':
			quoted = !quoted
		case !quoted && c == '(':
			rest := skipComment([]byte(s[i:]))
			i = len(s) - len(rest) - 1
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
