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
// # ARC
//
// Verify also validates the message's ARC chain (RFC 8617 §5.2: instance
// numbering, cv= values, the newest ARC-Message-Signature, every
// ARC-Seal, oldest-pass) and reports it as arc= in AuthenticationResults.
// VerifyInput.TrustedARCSealers names the sealers (ARC-Seal d=) whose
// ARC-Authentication-Results may stand in for a DMARC failure that
// forwarding caused (applyARCOverride: the chain passed, every sealer from
// the newest down to the one used is trusted, and it saw an aligned pass);
// the override is reported as policy.override=trusted_forwarder and
// DMARCReject holds back. Any other seal is verified and reported, never
// trusted. A trusted relay's own Authentication-Results (standin.go) are
// one convention with it: our DMARC result stays what our checks found,
// and the relay is reported as the override (policy.trusted-authres).
//
// ARCSealer.Seal seals what the inbound route relays, after rewriting, with
// an RSA key (dkimpy's ARC verifier fails ed25519-sha256 seals):
// ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results with our
// verdicts, i=N+1 over the chain as received when the message still
// carries it byte for byte; when rewriting changed it (tokenized addresses
// in an earlier sealer's results), the old sets would only fail, so they
// are removed (ARCSeal.StripOld, StripARC) and a new chain starts, our
// results reporting what the old one was.
//
// go-msgauth, which this package uses for DKIM, DMARC and
// Authentication-Results, has no ARC (https://github.com/emersion/go-msgauth/issues/7),
// and keeps its canonicalization and key query unexported; its signer and
// verifier only know the DKIM-Signature field, while an ARC signature
// hashes itself under its own name. So the ARC-specific parts are written
// here, small: relaxed and simple canonicalization (arc_canon.go, checked
// against go-msgauth's body hashes), the key record (arc_sig.go), the
// chain (arc.go, arc_verify.go), the seal (arc_seal.go). Results are
// parsed with go-msgauth's authres. The Go ARC packages that exist are
// recent and unused (github.com/rest-mail/go-arc, schmidtw/arc,
// synqronlabs/raven/arc); the tests check ours against dkimpy's ARC
// (Debian python3-dkim) both ways, and against Mail::DKIM::ARC (Debian
// libmail-dkim-perl). The standard may be moved to Historic
// (draft-ietf-dmarc-arc-to-historic); what is here is small enough to
// drop then.
package mailauth
