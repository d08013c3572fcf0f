package mailauth

import (
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// arcResult reports the chain in Authentication-Results (RFC 8617 §10.1:
// method arc, property header.oldest-pass), with a comment naming the
// newest sealer and the trusted one whose results were used, as
// "as.<instance>.d=<domain> as.<instance>.s=<selector>". go-msgauth's
// formatter writes no comments, hence the text written here. "" without a
// chain.
func (v *Verdicts) arcResult() string {
	a := v.ARC
	if a.Result == "" || a.Result == ResultNone {
		return ""
	}
	var notes []string
	if n := len(a.Sets); n > 0 {
		notes = append(notes, sealerNote(a.Sets[n-1]))
		if t := a.Trusted; t > 0 && t != n {
			notes = append(notes, sealerNote(a.Sets[t-1]))
		}
	}
	if a.Trusted > 0 {
		notes = append(notes, fmt.Sprintf("trusted i=%d", a.Trusted))
	}
	s := "arc=" + string(a.Result)
	if a.Result != ResultPass && a.Reason != "" {
		s += " reason=" + quoteValue(a.Reason)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	if a.Result == ResultPass {
		s += fmt.Sprintf(" header.oldest-pass=%d", a.OldestPass)
	}
	return s
}

func sealerNote(s ARCSet) string {
	return fmt.Sprintf("as.%d.d=%s as.%d.s=%s", s.Instance, s.Domain, s.Instance, s.Selector)
}

// quoteValue writes a reason as an RFC 5322 quoted-string.
func quoteValue(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// dmarcResult is the DMARC result our own checks found, with the local
// policy that overrode a failure, one convention for both trusted sources:
// policy.override=trusted_forwarder (the PolicyOverrideType of RFC 7489
// Appendix C, §6.7) and who vouched: policy.arc-sealer, the trusted ARC
// sealer's domain (RFC 8617 §7.2), or policy.trusted-authres, the trusted
// relay's authserv-id.
func (v *Verdicts) dmarcResult() authres.Result {
	d := v.DMARC
	if !d.Overridden() {
		return &authres.DMARCResult{Value: authres.ResultValue(orNone(d.Result)), Reason: d.Reason, From: d.FromDomain}
	}
	return &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(d.Result), Params: map[string]string{
		"reason":                 d.Reason,
		"header.from":            d.FromDomain,
		"policy.override":        "trusted_forwarder",
		"policy.arc-sealer":      d.ARCOverride,
		"policy.trusted-authres": d.AuthresOverride,
	}}
}
