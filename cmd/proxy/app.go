package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

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
}

func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.configPath, "config", a.configPath, "configuration `file` (default: the embedded quickstart)")
	fs.StringVar(&a.dataDir, "data-dir", a.dataDir, "data `directory`, overriding the configuration's data_dir")
}

// config loads the configuration named by --config, or the embedded
// quickstart, and applies --data-dir.
func (a *app) config() (*policy.Config, error) {
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
	a.log = newLogger(a.stderr, cfg.Log)
	return cfg, nil
}

func newLogger(w io.Writer, l policy.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(l.Level)) // validated at load
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func dbPath(cfg *policy.Config) string { return filepath.Join(cfg.DataDir, "tokenproxy.db") }

// engine is the opened token engine: database, key provider, keys, map.
type engine struct {
	db   *tokenize.DB
	kek  vault.KEK
	keys *vault.Keyring
	m    *tokenize.Map
}

// openEngine opens the map and unwraps its keys. It fails, naming the
// cause, when the provider cannot unwrap: the proxy never runs keyless.
func (a *app) openEngine(ctx context.Context, cfg *policy.Config) (*engine, error) {
	db, kek, err := a.openKeys(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, err := vault.Load(ctx, kek, db)
	if err != nil {
		kek.Close()
		db.Close()
		return nil, fmt.Errorf("load data keys: %w", err)
	}
	m, err := tokenize.NewMap(db, keys, mapOptions(cfg, a.log))
	if err != nil {
		kek.Close()
		db.Close()
		return nil, err
	}
	return &engine{db: db, kek: kek, keys: keys, m: m}, nil
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
func (a *app) openKeys(ctx context.Context, cfg *policy.Config) (*tokenize.DB, vault.KEK, error) {
	db, err := tokenize.OpenDB(dbPath(cfg))
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
	e.m.Close()
	e.kek.Close()
	e.db.Close()
}

func mapOptions(cfg *policy.Config, log *slog.Logger) tokenize.Options {
	return tokenize.Options{
		Format:    tokenize.Format{Prefix: cfg.Tokens.Prefix, Domain: cfg.RelayDomain, Length: cfg.Tokens.Length},
		Tenant:    cfg.Tokens.Tenant,
		LocalCase: tokenize.LocalCase(cfg.Tokens.LocalPartCase),
		Logger:    log,
	}
}

func (a *app) newKEK(ctx context.Context, cfg *policy.Config, db *tokenize.DB) (vault.KEK, error) {
	if cfg.Keys.Provider == "vault" {
		return vault.NewTransit(ctx, transitConfig(cfg.Keys.Vault), vault.WithLogger(a.log))
	}
	has, err := db.HasWrappedKeys(ctx)
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
