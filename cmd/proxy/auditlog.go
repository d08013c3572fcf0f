package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/vault"
)

func auditPath(cfg *policy.Config) string {
	if cfg.Audit.Path != "" {
		return cfg.Audit.Path
	}
	return filepath.Join(cfg.DataDir, "audit.jsonl")
}

// auditSigner is what signs checkpoints and gives the public keys that
// verify them.
type auditSigner interface {
	audit.Signer
	PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error)
}

// newAuditSigner signs with the transit key audit.key when the keys are
// in Vault (the private key never leaves it), else with a key derived
// from the local keyring.
func newAuditSigner(ctx context.Context, cfg *policy.Config, kek vault.KEK) (auditSigner, error) {
	switch k := kek.(type) {
	case *vault.Transit:
		return k.AuditSigner(ctx, cfg.Audit.Key)
	case *vault.Local:
		return k.AuditSigner()
	default:
		return nil, fmt.Errorf("audit: no signer for key provider %T", kek)
	}
}

// auditKeys returns the verification keys of a signer.
func auditKeys(ctx context.Context, s auditSigner) (audit.Keys, error) {
	pubs, err := s.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := audit.Keys{}
	for v, p := range pubs {
		keys.Add(s.KeyID(), v, p)
	}
	return keys, nil
}

// openAudit opens the audit trail with its signer and, when configured,
// syslog forwarding. reg may be nil (commands other than serve), and so
// may onCheckpoint (a cluster node publishes its signed head with it).
func (a *app) openAudit(ctx context.Context, cfg *policy.Config, signer auditSigner, reg prometheus.Registerer,
	onCheckpoint func(audit.SignedHead)) (*audit.Log, error) {
	opts := audit.Options{
		Path: auditPath(cfg), Sync: cfg.Audit.Sync, Signer: signer, OnCheckpoint: onCheckpoint,
		CheckpointEvery: cfg.Audit.CheckpointEvery, CheckpointInterval: cfg.Audit.CheckpointInterval,
		Logger: a.log,
	}
	if reg != nil {
		opts.Metrics = audit.NewMetrics(reg)
	}
	if s := cfg.Audit.Syslog; s.Network != "" {
		fw, err := audit.NewSyslog(s.Network, s.Address, s.Tag)
		if err != nil {
			return nil, fmt.Errorf("audit.syslog: %w", err)
		}
		opts.Forward = fw
	}
	l, err := audit.Open(ctx, opts)
	if errors.Is(err, audit.ErrLocked) {
		return nil, fmt.Errorf("%w (is the proxy running? this command needs it stopped)", err)
	}
	return l, err
}

// auditOnce writes one record for a command that does not open the
// engine. kek, when given, signs the closing checkpoint; without it the
// next start's checkpoint covers the record. A command whose record
// cannot be written does nothing.
func (a *app) auditOnce(ctx context.Context, cfg *policy.Config, kek vault.KEK, rec audit.Record) error {
	var signer auditSigner
	if kek != nil {
		var err error
		if signer, err = newAuditSigner(ctx, cfg, kek); err != nil {
			return fmt.Errorf("audit signing key: %w", err)
		}
	}
	l, err := a.openAudit(ctx, cfg, signer, nil, nil)
	if err != nil {
		return err
	}
	rec.Actor = audit.ActorFrom(ctx)
	_, err = l.Append(ctx, rec)
	if cerr := l.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
