package mailauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
	"github.com/tokenproxy/tokenproxy/internal/rawheader"
)

// maxSignatures bounds the DKIM signatures verified per message: each costs
// a DNS look-up and a pass over the body (RFC 6376 §8.4 asks verifiers to
// limit this work). Signatures beyond it are not reported.
const maxSignatures = 10

// VerifyInput is what the SMTP session knows about a message's origin.
type VerifyInput struct {
	ClientIP net.IP // the connecting client's address
	Helo     string // the HELO/EHLO argument
	MailFrom string // the reverse-path without angle brackets; "" for the null path <>
	// Trust names the trusted relays and the results they may stand in
	// with (relay.go); zero: none.
	Trust Trust
	// Forwarded is the hop a trusted relay said it received the message
	// from (Postfix XFORWARD ADDR and HELO); zero: none. Read only when
	// the client is a trusted relay.
	Forwarded Hop
	// TrustedARCSealers are the ARC signing domains (d= of an ARC-Seal)
	// whose results may stand in for a DMARC failure that forwarding
	// caused (see applyARCOverride); a seal of any other domain is
	// verified and reported, never trusted.
	TrustedARCSealers []string
}

// Verify checks SPF, every DKIM signature and DMARC for a message as
// received (CRLF line ends), before anything in it is rewritten.
//
//   - SPF (RFC 7208) checks the MAIL FROM identity; when MAIL FROM is null it
//     checks the HELO identity instead (§2.3, §2.4).
//   - DKIM (RFC 6376) verifies each DKIM-Signature field, up to ten.
//   - DMARC (RFC 7489) looks up the policy of the From domain, or of its
//     organizational domain, and checks the alignment of the identifiers
//     that passed.
//   - ARC (RFC 8617) validates the chain of seals, if any; a trusted
//     sealer's results may stand in for a DMARC failure.
//
// A DNS failure or timeout is a temperror result, never an error: the error
// return is only for a message that cannot be read. Verify reads msg to
// its end and keeps only the header section; the body streams through, so
// a caller relaying the message tees it into its own copy.
func Verify(ctx context.Context, r *Resolver, in VerifyInput, msg io.Reader) (v *Verdicts, err error) {
	defer func() {
		// A malformed message must not take the session down (STYLE.md,
		// habit 9: recover panics).
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("mailauth: verify: panic: %v", p)
		}
	}()
	br := bufio.NewReaderSize(msg, 64<<10)
	hdr, err := rawheader.Read(br, maxHeaderBytes)
	if err != nil {
		return nil, fmt.Errorf("mailauth: reading header: %w", err)
	}
	fields := splitFields(hdr)

	hop, relayed := judgedHop(in, fields)
	spfDone := startSPFFor(ctx, r, in, hop, relayed) // its DNS look-ups overlap DKIM's
	arc := newARCCheck(fields)
	var body io.Reader = br
	if w := arc.bodyWriter(); w != nil {
		body = io.TeeReader(br, w) // the ARC body hashes, in the same pass
	}
	dkimV, err := verifyDKIM(ctx, r, hdr, fields, body)
	if err != nil {
		return nil, err
	}
	// go-msgauth may stop early (no signature, no key): read to the end, so
	// that a caller teeing msg gets all of it and a read error is reported.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return nil, fmt.Errorf("mailauth: reading message: %w", err)
	}
	v = &Verdicts{SPF: <-spfDone, DKIM: dkimV, Relay: relayed, ARC: arc.verify(ctx, r)}
	v.DMARC = evalDMARC(ctx, r, fields, v.SPF, v.DKIM)
	// A trusted relay's own results first: they may make DMARC pass; a
	// trusted ARC sealer's then only overrides a DMARC that still fails.
	v.applyStandIns(ctx, r, in, fields, standIns(in, relayed))
	applyARCOverride(v, in.TrustedARCSealers)
	return v, nil
}

// startSPF runs checkSPF in its own goroutine. The channel is buffered, so
// the goroutine ends even if Verify returns without reading it; a panic
// there is a temperror, not a crash.
func startSPF(ctx context.Context, r *Resolver, in VerifyInput) <-chan []SPFVerdict {
	done := make(chan []SPFVerdict, 1)
	go func() {
		defer func() {
			if recover() != nil {
				done <- []SPFVerdict{{Result: ResultTempError, Identity: "mailfrom", MailFrom: in.MailFrom}}
			}
		}()
		done <- checkSPF(ctx, r, in)
	}()
	return done
}

// checkSPF evaluates the MAIL FROM identity, or with a null reverse-path the
// HELO identity (RFC 7208 §2.3, §2.4: the MAIL FROM identity is then
// postmaster@<HELO>). A HELO that is not a domain name (an address
// literal) has no SPF record to check.
func checkSPF(ctx context.Context, r *Resolver, in VerifyInput) []SPFVerdict {
	v := SPFVerdict{Identity: "mailfrom", MailFrom: in.MailFrom, Domain: orgdomain.Normalize(domainOf(in.MailFrom))}
	sender := in.MailFrom
	if in.MailFrom == "" {
		v = SPFVerdict{Identity: "helo", Domain: orgdomain.Normalize(in.Helo)}
		sender = "postmaster@" + in.Helo
		if in.Helo == "" || strings.HasPrefix(in.Helo, "[") || !strings.Contains(v.Domain, ".") {
			v.Result = ResultNone
			return []SPFVerdict{v}
		}
	}
	res, _ := spf.CheckHostWithSender(in.ClientIP, in.Helo, sender,
		spf.WithContext(ctx), spf.WithResolver(r))
	v.Result = Result(res)
	if v.Domain == "" { // a MAIL FROM without domain: the library used HELO's
		v.Domain = orgdomain.Normalize(in.Helo)
	}
	return []SPFVerdict{v}
}

// verifyDKIM verifies every DKIM-Signature field with go-msgauth, reading
// the body from body. go-msgauth reports signatures in header order, so its
// i-th verification belongs to the i-th DKIM-Signature field.
func verifyDKIM(ctx context.Context, r *Resolver, hdr []byte, fields []field, body io.Reader) ([]DKIMVerdict, error) {
	sigs := fieldsNamed(fields, "DKIM-Signature")
	if len(sigs) == 0 {
		return nil, nil
	}
	opts := &dkim.VerifyOptions{LookupTXT: r.keyTXTFunc(ctx), MaxVerifications: maxSignatures}
	verifs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(hdr), body), opts)
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, fmt.Errorf("mailauth: dkim: %w", err)
	}
	out := make([]DKIMVerdict, len(verifs))
	for i, vf := range verifs {
		tags := map[string]string{}
		if i < len(sigs) { // always, unless the two header parsers disagree
			tags = parseTags(sigs[i].value())
		}
		out[i] = dkimVerdict(vf, tags)
	}
	return out, nil
}

// dkimVerdict maps one go-msgauth verification to a result (RFC 6376 §6.1:
// TEMPFAIL is temperror, PERMFAIL of the signature or key record is
// permerror, a signature or body hash that does not verify is fail).
func dkimVerdict(vf *dkim.Verification, tags map[string]string) DKIMVerdict {
	d := DKIMVerdict{
		Domain:     orgdomain.Normalize(vf.Domain),
		Selector:   stripSpace(tags["s"]),
		Algorithm:  stripSpace(tags["a"]),
		Identifier: vf.Identifier,
	}
	if d.Domain == "" {
		d.Domain = orgdomain.Normalize(stripSpace(tags["d"]))
	}
	switch {
	case vf.Err == nil:
		d.Result = ResultPass
	case dkim.IsTempFail(vf.Err):
		d.Result = ResultTempError
	case dkim.IsPermFail(vf.Err):
		d.Result = ResultPermError
	default:
		d.Result = ResultFail
	}
	if vf.Err != nil {
		d.Reason = shortReason(vf.Err)
	}
	return d
}

// shortReason keeps the fixed part of a go-msgauth error ("signature did not
// verify", "no key for signature"), dropping what follows the first colon:
// resolver addresses, DNS names and library internals.
func shortReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "dkim: ")
	s, _, _ = strings.Cut(s, ":")
	return strings.TrimSpace(s)
}

// stripSpace removes all white space, as in tag values that may be folded.
func stripSpace(s string) string {
	return strings.Join(strings.Fields(s), "")
}
