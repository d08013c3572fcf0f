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

// authCheck is the inbound route's SPF, DKIM and DMARC check; nil when
// inbound.auth_check.enabled is false.
func authCheck(cfg *policy.Config) *smtp.AuthCheck {
	a := cfg.Inbound.AuthCheck
	if !a.Enabled {
		return nil
	}
	return &smtp.AuthCheck{Resolver: resolver(cfg), TagDMARCReject: a.DMARCRejectAction == "tag"}
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
	key, err := dkimKey(cfg, kek)
	if err != nil {
		return nil, fmt.Errorf("outbound.dkim: %w", err)
	}
	var headers []string // nil: mailauth's recommended set
	if len(d.Headers) > 0 {
		headers = d.Headers
	}
	return &mailauth.SignerConfig{Domain: d.Domain, Selector: d.Selector, Key: key, HeaderKeys: headers}, nil
}

// dkimKey loads key_file, or opens the transit key vault_key on the key
// provider's Vault login (one login, one token renewal for both uses).
func dkimKey(cfg *policy.Config, kek vault.KEK) (crypto.Signer, error) {
	d := cfg.Outbound.DKIM
	if d.KeyFile != "" {
		return mailauth.LoadKeyFile(d.KeyFile)
	}
	vc, ok := kek.(interface{ Client() *vaultapi.Client })
	if !ok {
		return nil, errors.New("vault_key needs keys.provider: vault")
	}
	key, err := vault.NewDKIMSigner(vc.Client(), cfg.Keys.Vault.Mount, d.VaultKey)
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
