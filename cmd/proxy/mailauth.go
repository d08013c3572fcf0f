package main

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/vault"
)

// authCheck is the inbound route's SPF, DKIM, DMARC and ARC check, and
// its ARC seal; nil when inbound.auth_check.enabled is false.
func authCheck(cfg *policy.Config, kek vault.KEK) (*smtp.AuthCheck, error) {
	a := cfg.Inbound.AuthCheck
	if !a.Enabled {
		return nil, nil
	}
	c := &smtp.AuthCheck{Resolver: resolver(cfg), TagDMARCReject: a.DMARCRejectAction == "tag",
		TrustedARCSealers: a.TrustedARCSealers}
	if s := a.ARCSeal; s.Domain != "" {
		key, err := signingKey(cfg, kek, s.KeyFile, s.VaultKey)
		if err != nil {
			return nil, fmt.Errorf("inbound.auth_check.arc_seal: %w", err)
		}
		c.ARCSeal = &mailauth.ARCSealer{Domain: s.Domain, Selector: s.Selector, Key: key}
		if err := c.ARCSeal.Check(); err != nil { // an Ed25519 key: fail at start, not per message
			return nil, fmt.Errorf("inbound.auth_check.arc_seal: %w", err)
		}
	}
	return c, nil
}

// resolver asks inbound.auth_check.dns_server, or the system's resolver.
func resolver(cfg *policy.Config) *mailauth.Resolver {
	a := cfg.Inbound.AuthCheck
	return mailauth.NewResolver(a.DNSServer, a.DNSTimeout)
}

// authservID names our Authentication-Results: the configured one, or the
// inbound route's host name.
func authservID(cfg *policy.Config) string {
	if id := cfg.Inbound.AuthCheck.AuthservID; id != "" {
		return id
	}
	return hostname(cfg.Inbound.Hostname)
}

// dkimSigner is the outbound route's signing configuration; nil when
// outbound.dkim.domain is empty.
func dkimSigner(cfg *policy.Config, kek vault.KEK) (*mailauth.SignerConfig, error) {
	d := cfg.Outbound.DKIM
	if d.Domain == "" {
		return nil, nil
	}
	key, err := signingKey(cfg, kek, d.KeyFile, d.VaultKey)
	if err != nil {
		return nil, fmt.Errorf("outbound.dkim: %w", err)
	}
	var headers []string // nil: mailauth's recommended set
	if len(d.Headers) > 0 {
		headers = d.Headers
	}
	return &mailauth.SignerConfig{Domain: d.Domain, Selector: d.Selector, Key: key, HeaderKeys: headers}, nil
}

// signingKey loads keyFile, or opens the transit key vaultKey on the key
// provider's Vault login (one login, one token renewal for every use): the
// DKIM key and the ARC sealing key.
func signingKey(cfg *policy.Config, kek vault.KEK, keyFile, vaultKey string) (crypto.Signer, error) {
	if keyFile != "" {
		return mailauth.LoadKeyFile(keyFile)
	}
	vc, ok := kek.(interface{ Client() *vaultapi.Client })
	if !ok {
		return nil, errors.New("vault_key needs keys.provider: vault")
	}
	key, err := vault.NewDKIMSigner(vc.Client(), cfg.Keys.Vault.Mount, vaultKey)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return key, nil
}

// spoolDir is where messages too large for memory wait while they are
// verified or signed: <data_dir>/spool, 0700 (the files are 0600 and
// nameless).
func spoolDir(cfg *policy.Config) (string, error) {
	dir := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	return dir, nil
}
