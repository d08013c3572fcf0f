package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/deploy/examples"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

// app holds what every command shares: global flags, output, logger.
type app struct {
	configPath string
	dataDir    string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	log        *slog.Logger
	logLevel   slog.LevelVar // log.level, which a reload may change
	// metricsReg, when set (serve), gets the audit trail's metrics.
	metricsReg *prometheus.Registry
}

func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.configPath, "config", a.configPath, "configuration `file` (default: the embedded quickstart)")
	fs.StringVar(&a.dataDir, "data-dir", a.dataDir, "data `directory`, overriding the configuration's data_dir")
}

// config loads the configuration named by --config, or the embedded
// quickstart, applies --data-dir, and sets up the logger.
func (a *app) config() (*policy.Config, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	a.logLevel.Set(logLevel(cfg.Log))
	a.log = newLogger(a.stderr, cfg.Log, &a.logLevel)
	return cfg, nil
}

// loadConfig loads the configuration named by --config, or the embedded
// quickstart, and applies --data-dir: at start and at every reload.
func (a *app) loadConfig() (*policy.Config, error) {
	var cfg *policy.Config
	var err error
	if a.configPath == "" {
		cfg, err = policy.Parse(examples.Quickstart, "embedded quickstart")
	} else {
		cfg, err = policy.Load(a.configPath)
	}
	if err != nil {
		return nil, err
	}
	if a.dataDir != "" {
		cfg.DataDir = a.dataDir
	}
	return cfg, nil
}

func logLevel(l policy.Log) slog.Level {
	var level slog.Level
	level.UnmarshalText([]byte(l.Level)) // validated at load
	return level
}

func newLogger(w io.Writer, l policy.Log, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func dbPath(cfg *policy.Config) string { return filepath.Join(cfg.DataDir, "tokenproxy.db") }

// engine is the opened token engine: database, key provider, keys, map.
type engine struct {
	db     tokenize.Store
	kek    vault.KEK
	keys   *vault.Keyring
	m      *tokenize.Map
	signer auditSigner
	trail  *audit.Log
	heads  *headPublisher // a cluster node's, nil on bbolt
}

// openEngine opens the map and unwraps its keys. It fails, naming the
// cause, when the provider cannot unwrap: the proxy never runs keyless.
func (a *app) openEngine(ctx context.Context, cfg *policy.Config) (*engine, error) {
	db, kek, err := a.openKeys(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &engine{db: db, kek: kek}
	if err := a.openTrail(ctx, cfg, e); err != nil {
		e.Close()
		return nil, err
	}
	if e.keys, err = vault.Load(ctx, kek, db); err != nil {
		e.Close()
		return nil, fmt.Errorf("load data keys: %w", err)
	}
	opts := mapOptions(cfg, a.log)
	opts.Audit = compliance.MapAudit{Log: e.trail}
	// A key version another node (or `proxy keys rotate`) adds to a
	// shared store is unwrapped here, through this node's KEK, and used
	// without a restart; on bbolt nothing else writes the keys.
	opts.ReloadKeys = func(ctx context.Context, have *vault.Keyring) (*vault.Keyring, error) {
		return vault.Refresh(ctx, kek, db, have)
	}
	if e.m, err = tokenize.NewMap(db, e.keys, opts); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// openTrail opens the audit trail and its checkpoint signer. It comes
// before the data keys: a first start creates keys, and nothing is
// created unaudited.
func (a *app) openTrail(ctx context.Context, cfg *policy.Config, e *engine) error {
	var err error
	if e.signer, err = newAuditSigner(ctx, cfg, e.kek); err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	var reg prometheus.Registerer
	if a.metricsReg != nil {
		reg = a.metricsReg
	}
	if hs, ok := e.db.(headStore); ok {
		e.heads = newHeadPublisher(ctx, hs, a.log)
	}
	e.trail, err = a.openAudit(ctx, cfg, e.signer, reg, e.heads.hook())
	return err
}

// withEngine loads the configuration, opens the engine, runs fn, and
// closes the engine: the frame of every command that uses tokens.
func (a *app) withEngine(ctx context.Context, fn func(cfg *policy.Config, e *engine) error) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	e, err := a.openEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(cfg, e)
}

// nArgs checks the number of positional arguments.
func nArgs(args []string, n int, what string) error {
	if len(args) != n {
		if n == 0 {
			return usagef("unexpected arguments %q", args)
		}
		return usagef("want exactly %s", what)
	}
	return nil
}

// openKeys opens the database and the configured key provider.
func (a *app) openKeys(ctx context.Context, cfg *policy.Config) (tokenize.Store, vault.KEK, error) {
	db, err := a.openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	kek, err := a.newKEK(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, kek, nil
}

func (e *engine) Close() {
	if e.m != nil {
		e.m.Close()
	}
	if e.trail != nil {
		// A final signed checkpoint: Vault may be slow or gone.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e.trail.Close(ctx)
		cancel()
	}
	e.heads.close() // after the trail's last checkpoint, before the store closes
	e.kek.Close()
	e.db.Close()
}

// auditKeys returns the keys that verify the trail's checkpoints.
func (e *engine) auditKeys(ctx context.Context) (audit.Keys, error) { return auditKeys(ctx, e.signer) }

func mapOptions(cfg *policy.Config, log *slog.Logger) tokenize.Options {
	return tokenize.Options{
		Format:    tokenize.Format{Prefix: cfg.Tokens.Prefix, Domain: cfg.RelayDomain, Length: cfg.Tokens.Length},
		Tenant:    cfg.Tokens.Tenant,
		LocalCase: address.LocalCase(cfg.Tokens.LocalPartCase),
		Logger:    log,
		// Decided at erasure time: the tombstone keeps a suppression
		// entry only under refuse.
		SuppressErased: cfg.Compliance.AfterErasure == "refuse",
		// Only a shared store can be stale; on bbolt it has no effect.
		StaleGrace: cfg.Store.Etcd.KnownSenderGrace,
	}
}

func (a *app) newKEK(ctx context.Context, cfg *policy.Config, db tokenize.Store) (vault.KEK, error) {
	if cfg.Keys.Provider == "vault" {
		opts := []vault.TransitOption{vault.WithLogger(a.log)}
		if a.metricsReg != nil { // serve: the login's lease and renewals on /metrics
			opts = append(opts, vault.WithMetrics(vault.NewTransitMetrics(a.metricsReg)))
		}
		return vault.NewTransit(ctx, transitConfig(cfg.Keys.Vault), opts...)
	}
	has, err := hasWrappedKeys(ctx, db)
	if err != nil {
		return nil, err
	}
	path := cfg.Keys.Local.KeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "keyring.json")
	}
	return vault.OpenLocal(path, vault.LocalOptions{Create: !has, Logger: a.log})
}

func transitConfig(v policy.VaultKeys) vault.TransitConfig {
	tc := vault.TransitConfig{
		Address: v.Address, Mount: v.Mount, Key: v.Key, CACert: v.CACert,
		TLSServerName: v.TLSServerName, Timeout: v.Timeout,
	}
	switch v.Auth.Method {
	case "approle":
		ar := v.Auth.AppRole
		tc.AppRole = &vault.AppRoleConfig{Mount: ar.Mount, RoleID: ar.RoleID, RoleIDFile: ar.RoleIDFile,
			SecretIDFile: ar.SecretIDFile, SecretIDWrapped: ar.SecretIDWrapped}
	default:
		tc.TokenFile = v.Auth.TokenFile
	}
	return tc
}
