package policy

import (
	"fmt"
	"strings"
)

// validateARC checks inbound.auth_check's trusted_arc_sealers and
// arc_seal.
func (c *Config) validateARC() error {
	a := c.Inbound.AuthCheck
	for i, d := range a.TrustedARCSealers {
		if !hostRE.MatchString(strings.TrimSuffix(d, ".")) {
			return c.fail(fmt.Sprintf("inbound.auth_check.trusted_arc_sealers[%d]", i), "must be a lower-case ASCII domain (an ARC-Seal's d=), got %q", d)
		}
	}
	if len(a.TrustedARCSealers) > 0 && !a.Enabled {
		return c.fail("inbound.auth_check.trusted_arc_sealers", "needs inbound.auth_check.enabled: true (only the check verifies ARC chains)")
	}
	s := a.ARCSeal
	if s.Domain == "" {
		if s.Selector != "" || s.KeyFile != "" || s.VaultKey != "" {
			return c.fail("inbound.auth_check.arc_seal.domain", "must be set when another arc_seal field is (no domain: no seal)")
		}
		return nil
	}
	if !a.Enabled {
		return c.fail("inbound.auth_check.arc_seal", "needs inbound.auth_check.enabled: true (the seal carries the check's verdicts)")
	}
	if !hostRE.MatchString(s.Domain) {
		return c.fail("inbound.auth_check.arc_seal.domain", "must be a lower-case ASCII host name, got %q", s.Domain)
	}
	if !selectorRE.MatchString(s.Selector) {
		return c.fail("inbound.auth_check.arc_seal.selector", "must be lower-case DNS labels like arc1, got %q", s.Selector)
	}
	if (s.KeyFile == "") == (s.VaultKey == "") {
		return c.fail("inbound.auth_check.arc_seal.key_file", "set exactly one of key_file and vault_key")
	}
	if s.VaultKey != "" {
		if strings.Contains(s.VaultKey, "/") {
			return c.fail("inbound.auth_check.arc_seal.vault_key", "a transit key name has no slash, got %q", s.VaultKey)
		}
		if c.Keys.Provider != "vault" {
			return c.fail("inbound.auth_check.arc_seal.vault_key", "needs keys.provider: vault (the signer uses keys.vault's connection and mount)")
		}
	}
	return nil
}
