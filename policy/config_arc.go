package policy

// ARCSeal configures the inbound route's ARC seal (RFC 8617) over what it
// relays: the ARC-Authentication-Results carry our verdicts, so the next
// hop (the CRM intake) can trust them by the seal. An empty Domain means
// no seal; otherwise exactly one key source is set, as for outbound.dkim.
//
// AuthCheck.TrustedARCSealers (inbound.auth_check.trusted_arc_sealers) are
// the ARC signing domains (an ARC-Seal's d=) whose results may stand in
// for a DMARC failure that forwarding caused: a company gateway that tags
// subjects or adds disclaimers, sealing what it saw before. Empty: no
// seal is trusted (chains are still verified and reported).
type ARCSeal struct {
	Domain   string `yaml:"domain"`    // d=: the key is at <selector>._domainkey.<domain>
	Selector string `yaml:"selector"`  // s=
	KeyFile  string `yaml:"key_file"`  // PEM RSA private key, ≥ 2048 bits (checked at start: ARC verifiers know rsa-sha256 only)
	VaultKey string `yaml:"vault_key"` // a transit key name, on keys.vault's connection
}
