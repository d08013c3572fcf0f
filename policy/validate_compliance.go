package policy

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

func (c *Config) validateCompliance() error {
	for _, check := range []func() error{c.validateAudit, c.validatePrincipals, c.validateRetention, c.validateConsole} {
		if err := check(); err != nil {
			return err
		}
	}
	t := c.Admin.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		return c.fail("admin.tls", "set both cert_file and key_file, or neither (a self-signed certificate)")
	}
	return nil
}

func (c *Config) validateAudit() error {
	a := c.Audit
	if a.CheckpointEvery < 1 {
		return c.fail("audit.checkpoint_every", "must be at least 1")
	}
	if a.CheckpointInterval < time.Second {
		return c.fail("audit.checkpoint_interval", "must be at least 1s")
	}
	if c.Keys.Provider == "vault" && a.Key == "" {
		return c.fail("audit.key", "name the transit key (type ed25519) that signs checkpoints")
	}
	switch a.Syslog.Network {
	case "":
	case "udp", "tcp", "unix", "unixgram":
		if a.Syslog.Address == "" {
			return c.fail("audit.syslog.address", "required when audit.syslog.network is set")
		}
	default:
		return c.fail("audit.syslog.network", "must be empty, udp, tcp, unix or unixgram, got %q", a.Syslog.Network)
	}
	return nil
}

func (c *Config) validatePrincipals() error {
	cc := c.Compliance
	if cc.MaxResolutionsPerHour < 1 {
		return c.fail("compliance.max_resolutions_per_hour", "must be at least 1")
	}
	if cc.AfterErasure != "new_token" && cc.AfterErasure != "refuse" {
		return c.fail("compliance.after_erasure", "must be new_token or refuse, got %q", cc.AfterErasure)
	}
	names := map[string]bool{}
	for i, p := range cc.Principals {
		f := fmt.Sprintf("compliance.principals[%d]", i)
		if p.Name == "" || names[p.Name] {
			return c.fail(f+".name", "must be set and unique")
		}
		names[p.Name] = true
		if len(p.Roles) == 0 {
			return c.fail(f+".roles", "list at least one of auditor, officer, operator")
		}
		for j, r := range p.Roles {
			if !slices.Contains([]string{RoleAuditor, RoleOfficer, RoleOperator}, r) {
				return c.fail(fmt.Sprintf("%s.roles[%d]", f, j), "must be auditor, officer or operator, got %q", r)
			}
		}
		if err := c.checkCredentials(f, p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) checkCredentials(f string, p Principal) error {
	if p.TokenSHA256 == "" && p.ClientCertCN == "" && p.ClientCertSHA256 == "" {
		return c.fail(f, "set token_sha256, client_cert_cn or client_cert_sha256")
	}
	for _, h := range []struct{ field, v string }{{"token_sha256", p.TokenSHA256}, {"client_cert_sha256", p.ClientCertSHA256}} {
		if b, err := hex.DecodeString(h.v); h.v != "" && (err != nil || len(b) != 32) {
			return c.fail(f+"."+h.field, "must be 64 hex digits (a SHA-256)")
		}
	}
	if (p.ClientCertCN != "" || p.ClientCertSHA256 != "") && c.Admin.TLS.ClientCAFile == "" {
		return c.fail(f, "client certificates need admin.tls.client_ca_file")
	}
	return nil
}

func (c *Config) validateRetention() error {
	r := c.Retention
	if r.TokenMaxIdle < 0 || (r.TokenMaxIdle > 0 && r.TokenMaxIdle < 24*time.Hour) {
		return c.fail("retention.token_max_idle", "must be 0 (keep) or at least 24h: last use is recorded to the hour")
	}
	if r.SweepInterval < time.Minute {
		return c.fail("retention.sweep_interval", "must be at least 1m")
	}
	return nil
}
