package policy

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
)

var (
	prefixRE = regexp.MustCompile(`^[a-z]{1,16}$`)
	// hostRE accepts lower-case ASCII host names with at least one dot
	// (IDNA A-labels included); the configuration names our own domains,
	// which operators write in this form.
	hostRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Validate checks every field and returns the first error, naming the
// field and the reason.
func (c *Config) Validate() error {
	for _, check := range []func() error{c.validateDomains, c.validateMailboxes, c.validateTokens, c.validateRewrite, c.validateAttachments, c.validateKeys, c.validateLog, c.validateRoutes, c.validateMailAuth, c.validateCompliance, c.validateStore} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) fail(field, format string, args ...any) error {
	return &FieldError{Source: c.source, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (c *Config) validateDomains() error {
	if c.DataDir == "" {
		return c.fail("data_dir", "must not be empty")
	}
	if !hostRE.MatchString(c.RelayDomain) {
		return c.fail("relay_domain", "must be a lower-case ASCII host name, got %q", c.RelayDomain)
	}
	if len(c.InternalDomains) == 0 {
		return c.fail("internal_domains", "list at least the company's mail domain")
	}
	for i, d := range c.InternalDomains {
		if !hostRE.MatchString(d) {
			return c.fail(fmt.Sprintf("internal_domains[%d]", i), "must be a lower-case ASCII host name, got %q", d)
		}
		if d == c.RelayDomain {
			return c.fail(fmt.Sprintf("internal_domains[%d]", i), "the relay domain holds tokens, it cannot be internal")
		}
	}
	return nil
}

func (c *Config) validateMailboxes() error {
	if len(c.Mailboxes) == 0 {
		return c.fail("mailboxes", "list at least one public → crm mailbox")
	}
	seen := map[string]bool{}
	for i, m := range c.Mailboxes {
		f := fmt.Sprintf("mailboxes[%d]", i)
		if err := c.checkInternal(f+".public", m.Public); err != nil {
			return err
		}
		if err := c.checkInternal(f+".crm", m.CRM); err != nil {
			return err
		}
		if seen[strings.ToLower(m.Public)] {
			return c.fail(f+".public", "%q is listed twice", m.Public)
		}
		seen[strings.ToLower(m.Public)] = true
	}
	return nil
}

// checkInternal accepts a plain address in an internal domain. These are
// company addresses, never customer data, so naming them in errors is fine.
func (c *Config) checkInternal(field, addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return c.fail(field, "must be a plain address like support@company.example, got %q", addr)
	}
	if !c.IsInternal(addr[strings.LastIndexByte(addr, '@')+1:]) {
		return c.fail(field, "%q is not in internal_domains", addr)
	}
	return nil
}

func (c *Config) validateTokens() error {
	t := c.Tokens
	if t.Tenant == "" {
		return c.fail("tokens.tenant", "must not be empty")
	}
	if !prefixRE.MatchString(t.Prefix) {
		return c.fail("tokens.prefix", "must be 1 to 16 lower-case letters a-z, got %q", t.Prefix)
	}
	if t.Length < 16 || t.Length > 52 {
		return c.fail("tokens.length", "must be 16 (80 bits) to 52, got %d", t.Length)
	}
	if t.LocalPartCase != "fold" && t.LocalPartCase != "preserve" {
		return c.fail("tokens.local_part_case", "must be fold or preserve, got %q", t.LocalPartCase)
	}
	return nil
}

func (c *Config) validateRewrite() error {
	r := c.Rewrite
	switch r.DisplayNames {
	case "keep", "pseudonymize", "drop":
	default:
		return c.fail("rewrite.display_names", "must be keep, pseudonymize or drop, got %q", r.DisplayNames)
	}
	if r.Unscannable != "reject" && r.Unscannable != "headers-only" {
		return c.fail("rewrite.unscannable", "must be reject or headers-only, got %q", r.Unscannable)
	}
	l := r.Limits
	for _, lim := range []struct {
		field    string
		val, min int64
	}{
		{"max_message_bytes", l.MaxMessageBytes, 64 << 10},
		{"max_header_bytes", int64(l.MaxHeaderBytes), 4 << 10},
		{"max_mime_depth", int64(l.MaxMIMEDepth), 1},
		{"max_parts", int64(l.MaxParts), 1},
		{"max_text_part_bytes", int64(l.MaxTextPartBytes), 64 << 10},
		{"max_new_tokens", int64(l.MaxNewTokens), 1},
	} {
		if lim.val < lim.min {
			return c.fail("rewrite.limits."+lim.field, "must be at least %d, got %d", lim.min, lim.val)
		}
	}
	if int64(l.MaxTextPartBytes) > l.MaxMessageBytes {
		return c.fail("rewrite.limits.max_text_part_bytes", "must not exceed max_message_bytes")
	}
	// One held part and the encoded attached message around it must fit,
	// or such a message could never pass.
	if l.MaxHeldBytes < 2*int64(l.MaxTextPartBytes) {
		return c.fail("rewrite.limits.max_held_bytes", "must be at least twice max_text_part_bytes (%d), got %d",
			2*int64(l.MaxTextPartBytes), l.MaxHeldBytes)
	}
	if l.MaxNewTokens > maxNewTokens {
		return c.fail("rewrite.limits.max_new_tokens", "must not exceed %d, got %d", maxNewTokens, l.MaxNewTokens)
	}
	return nil
}

func (c *Config) validateKeys() error {
	switch c.Keys.Provider {
	case "local":
		return nil
	case "vault":
		return c.validateVault()
	}
	return c.fail("keys.provider", "must be local or vault, got %q", c.Keys.Provider)
}

func (c *Config) validateVault() error {
	v := c.Keys.Vault
	u, err := url.Parse(v.Address)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return c.fail("keys.vault.address", "must be an http(s) URL like https://vault.company.example:8200, got %q", v.Address)
	}
	if v.Mount == "" || v.Key == "" {
		return c.fail("keys.vault.key", "mount and key must not be empty")
	}
	if v.Timeout <= 0 {
		return c.fail("keys.vault.timeout", "must be a positive duration like 10s")
	}
	switch v.Auth.Method {
	case "token":
		return nil
	case "approle":
		a := v.Auth.AppRole
		if (a.RoleID == "") == (a.RoleIDFile == "") {
			return c.fail("keys.vault.auth.approle.role_id", "set exactly one of role_id and role_id_file")
		}
		if a.SecretIDFile == "" {
			return c.fail("keys.vault.auth.approle.secret_id_file", "must name the file holding the secret_id")
		}
		return nil
	}
	return c.fail("keys.vault.auth.method", "must be token or approle, got %q", v.Auth.Method)
}

func (c *Config) validateLog() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return c.fail("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return c.fail("log.format", "must be text or json, got %q", c.Log.Format)
	}
	return nil
}

// IsInternal reports whether a domain (lower-case ASCII) is one of the
// company's or the CRM's, whose addresses are never tokenized.
func (c *Config) IsInternal(domain string) bool {
	for _, d := range c.InternalDomains {
		if domain == d {
			return true
		}
	}
	return false
}

// maxNewTokens caps rewrite.limits.max_new_tokens: a message's new tokens
// are committed together, and up to 64 of them fit one etcd transaction
// (128 operations, two per token); 1,000 is already twenty times what
// real support mail needs and keeps the commit a few updates long.
const maxNewTokens = 1000
