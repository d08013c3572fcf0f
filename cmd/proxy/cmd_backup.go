package main

import (
	"context"
	"fmt"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
)

var cmdBackup = &command{
	name:    "backup",
	args:    "FILE",
	summary: "write a consistent copy of the token map (with its wrapped keys) to FILE",
	run:     runBackup,
}

func runBackup(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 1, "one FILE"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Store.Backend == "etcd" {
		return errNotBbolt
	}
	db, err := boltstore.Open(dbPath(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := a.auditOnce(ctx, cfg, nil, audit.Record{Event: audit.Backup, Outcome: "ok", Detail: map[string]string{"via": "cli"}}); err != nil {
		return err
	}
	n, err := db.BackupFile(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "backup written: %s (%d bytes); the key provider (Vault key or keyring file) is needed to read it\n", args[0], n)
	return nil
}

var cmdRestore = &command{
	name:    "restore",
	args:    "FILE",
	summary: "replace the token map with a backup (the proxy must be stopped)",
	run:     runRestore,
}

func runRestore(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 1, "one FILE"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Store.Backend == "etcd" {
		return errNotBbolt
	}
	if err := a.auditOnce(ctx, cfg, nil, audit.Record{Event: audit.Restore, Outcome: "ok"}); err != nil {
		return err
	}
	if err := boltstore.Restore(args[0], dbPath(cfg)); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "restored %s from %s\n", dbPath(cfg), args[0])
	return nil
}
