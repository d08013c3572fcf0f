// Package mailauth is the mail authentication of the two routes: SPF, DKIM
// and DMARC verification of what customers send (inbound, before
// tokenization), DKIM signing of what the CRM sends (outbound, after
// detokenization), and the DNS records that make both work.
//
// # Inbound: verify, then report
//
// The inbound route verifies the message as received, before rewriting
// changes a byte of it, and reports the verdicts to the CRM in an
// Authentication-Results field whose addresses are tokenized like the rest
// of the message:
//
//	r := mailauth.NewResolver("127.0.0.53:53", 5*time.Second) // once, at start
//	v, err := mailauth.Verify(ctx, r, mailauth.VerifyInput{
//		ClientIP: ip, Helo: helo, MailFrom: from,
//	}, msg)
//	if err != nil { … } // the message could not be read; DNS failures are temperror verdicts
//	if v.DMARCReject() { … } // the route's policy: 550 5.7.1
//	hdr, _ = mailauth.StripAuthResults(hdr, "mx.company.example") // RFC 8601 §5: forged ones
//	ar := v.AuthenticationResults("mx.company.example", tokenizeAddr)
//	// prepend "Authentication-Results: " + ar + "\r\n" to the rewritten message
//
// Verify checks SPF (RFC 7208) for MAIL FROM, or for HELO when MAIL FROM is
// null; every DKIM signature (RFC 6376, RFC 8463) with go-msgauth; and DMARC
// (RFC 7489): the policy of the From domain or its organizational domain
// (the public suffix list), and relaxed or strict alignment of the SPF and
// DKIM identifiers that passed. Every DNS question goes through a Resolver:
// one configured server, a timeout per look-up, and failures that always
// come back as temperror results, never as errors or panics.
//
// # Outbound: sign
//
// The outbound route signs the detokenized message last, with
// relaxed/relaxed canonicalization and rsa-sha256 or ed25519-sha256:
//
//	key, err := mailauth.LoadKeyFile("/etc/tokenproxy/dkim.pem") // or vault.NewDKIMSigner
//	cfg := mailauth.SignerConfig{Domain: "company.example", Selector: "tp1", Key: key}
//	err = mailauth.Sign(ctx, cfg, msg, out)
//
// The key is any crypto.Signer; one that also has SignContext (see
// contextSigner) is given each message's context. vault.NewDKIMSigner's
// keeps the private key in Vault's transit engine: each signature is one
// Vault call, pinned to the key version whose public key is published.
// This package imports no Vault client.
//
// # DNS records
//
// Records lists what to publish (SPF, DKIM, DMARC for the sender domains;
// MTA-STS and TLS-RPT for the relay domain), and CheckRecords compares it
// with what DNS answers, for a check-config command or a readiness probe.
//
// # ARC is not implemented
//
// ARC (RFC 8617) would let the inbound route seal the authentication
// results it saw before tokenization broke the customer's DKIM signature.
// It is not here because no maintained Go library provides it and the
// standard's future is in doubt:
//
//   - go-msgauth, which this package uses for DKIM, DMARC and
//     Authentication-Results, has no ARC: the request has been open since
//     2019 (https://github.com/emersion/go-msgauth/issues/7), and a pull
//     request for the ARC-Authentication-Results field alone was closed
//     without being merged (https://github.com/emersion/go-msgauth/pull/20).
//   - mox (mjl-/mox) did not merge a contributed ARC implementation; its
//     maintainer noted that ARC may be moved to Historic
//     (https://github.com/mjl-/mox/pull/415,
//     https://www.ietf.org/archive/id/draft-ietf-dmarc-arc-to-historic-00.html).
//   - The Go packages that do seal are recent and unproven:
//     github.com/rest-mail/go-arc (v0.2, sealing added in July 2026),
//     github.com/schmidtw/arc (untagged), github.com/synqronlabs/raven/arc
//     (part of an SMTP framework), none of them imported by anyone
//     according to pkg.go.dev, and github.com/Open-Email/go-arc (a single
//     commit). A seal that verifiers reject is worse than none, and writing
//     our own means a new signature format to maintain for a standard on
//     its way out.
//
// An ARC seal is also only worth something to a receiver that trusts the
// sealer; here the receiver is the CRM, which already trusts the proxy and
// gets the pre-rewrite verdicts in Authentication-Results. Should ARC be
// wanted later, the independent implementations the tests already install
// (Mail::DKIM::ARC, dkimpy's arc_sign and arc_verify) can check it.
package mailauth
