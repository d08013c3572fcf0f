package mailauth

// Result is the outcome of one authentication method, with the values
// RFC 8601 §2.7 registers for SPF, DKIM and DMARC.
type Result string

// The results. Not every method produces every value: softfail and neutral
// are SPF's (RFC 7208 §2.6), DMARC has none, pass, fail, temperror and
// permerror (RFC 7489 §11.2).
const (
	ResultNone      Result = "none"      // nothing to evaluate: no record, no signature
	ResultPass      Result = "pass"      // authenticated
	ResultFail      Result = "fail"      // authentication failed
	ResultSoftFail  Result = "softfail"  // SPF: probably not authorized (~all)
	ResultNeutral   Result = "neutral"   // SPF: no assertion (?all)
	ResultTempError Result = "temperror" // a transient failure, DNS mostly: try again later
	ResultPermError Result = "permerror" // a broken record or signature
)

// Policy is a DMARC policy, the p= or sp= of a DMARC record (RFC 7489
// §6.3).
type Policy string

// The DMARC policies.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// Verdicts are the results of Verify for one message.
type Verdicts struct {
	SPF   []SPFVerdict  // one per identity checked: MAIL FROM, or HELO when MAIL FROM is null
	DKIM  []DKIMVerdict // one per DKIM-Signature field, in header order
	DMARC DMARCVerdict
	// Relay is set when the client was a trusted relay: SPF then judged
	// the first untrusted hop (relay.go).
	Relay *RelayVerdict
	ARC   ARCVerdict // the ARC chain (RFC 8617)
}

// SPFVerdict is the SPF result for one identity (RFC 7208 §2.3, §2.4).
type SPFVerdict struct {
	Result Result
	// Identity is "mailfrom" or "helo", the RFC 8601 ptype smtp.mailfrom or
	// smtp.helo.
	Identity string
	// Domain is the domain whose SPF record was evaluated (normalized).
	Domain string
	// MailFrom is the MAIL FROM address checked; "" for the HELO identity.
	// It is a customer address on the inbound route: never log it.
	MailFrom string
}

// DKIMVerdict is the result of one DKIM-Signature field (RFC 6376 §6).
type DKIMVerdict struct {
	Result    Result
	Domain    string // d=, the signing domain (SDID)
	Selector  string // s=
	Algorithm string // a=, e.g. rsa-sha256, ed25519-sha256
	// Identifier is i=, the AUID; "@" + Domain when the signature has none.
	// It may name a customer address.
	Identifier string
	// Reason is a short fixed text for a result other than pass, without
	// addresses or resolver details.
	Reason string
}

// DMARCVerdict is the DMARC result of the message (RFC 7489 §6.6).
type DMARCVerdict struct {
	Result Result
	// FromDomain is the RFC5322.From domain evaluated (normalized).
	FromDomain string
	// PolicyDomain is where the DMARC record was found: FromDomain or its
	// organizational domain (RFC 7489 §6.6.3); "" without a record.
	PolicyDomain string
	// Policy is the policy the domain owner asks for this message: p=, or
	// sp= for a subdomain whose record came from the organizational domain;
	// "" without a record.
	Policy Policy
	// Percent is pct= (RFC 7489 §6.6.4), 100 when the record has none.
	Percent int
	// SPFAligned and DKIMAligned tell which aligned identifier passed.
	SPFAligned, DKIMAligned bool
	// Reason is a short fixed text for a result other than pass.
	Reason string
	// AuthresOverride is the authserv-id of the trusted relay whose own
	// Authentication-Results stood in for a DMARC failure (see
	// applyStandIns), and ARCOverride the trusted ARC sealer whose results
	// did (see applyARCOverride); "" when none did, at most one is set.
	// Result stays what our own checks found, fail: the override is local
	// policy (RFC 7489 §6.7), reported as such (Overridden).
	AuthresOverride string
	ARCOverride     string
	// strictSPF and strictDKIM are the record's alignment modes.
	strictSPF, strictDKIM bool
}

// DMARCReject reports whether the From domain's owner asks receivers to
// reject this message: DMARC failed and the policy is reject for the whole
// of the domain's mail (pct=100, RFC 7489 §6.6.4). A domain still sampling
// (pct below 100) asks for the next-lower policy, quarantine, for the rest;
// not knowing which part this message falls in, we do not reject it: a
// refused customer message is the costlier mistake. A trusted ARC sealer's
// or trusted relay's override (Overridden) is not rejected either. Temporary errors never
// reject (STYLE: unknown failure is temporary); the route decides what to
// answer.
func (v *Verdicts) DMARCReject() bool {
	d := v.DMARC
	return d.Result == ResultFail && d.Policy == PolicyReject && d.Percent >= 100 && !d.Overridden()
}

// Overridden reports whether a trusted source vouched for a message whose
// DMARC failed, so local policy does not apply the domain's policy to it:
// the PolicyOverrideType trusted_forwarder of RFC 7489 Appendix C.
func (d DMARCVerdict) Overridden() bool { return d.AuthresOverride != "" || d.ARCOverride != "" }
