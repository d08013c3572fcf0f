package main

import (
	"context"
	"flag"
	"fmt"
	"time"

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

func cmdRestore() *command {
	var noReplay bool
	return &command{
		name: "restore",
		args: "FILE",
		summary: "replace the token map with a backup, then erase again what the audit trail says was erased " +
			"(the proxy must be stopped)",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&noReplay, "no-replay", false, "restore only; run 'proxy store replay-erasures' yourself before serving")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runRestore(ctx, a, args, !noReplay) },
	}
}

// runRestore replaces the map with the backup and, unless told not to,
// replays the erasures of this node's trail at once (Invariant 7). The
// replay is automatic because a restore alone brings back every token
// erased since the backup, and a forgotten second step would serve them
// again; on one node its own trail names every erasure, so nothing needs
// collecting first. --no-replay is for a restore whose key provider is
// out of reach (the replay opens the map with its keys): the proxy must
// not serve until the replay has run.
func runRestore(ctx context.Context, a *app, args []string, replay bool) error {
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
	if !replay {
		fmt.Fprintln(a.stdout, "erasures made after the backup are undone until you run 'proxy store replay-erasures' (before serving)")
		return nil
	}
	if err := runReplayErasures(ctx, a, cfg, []string{auditPath(cfg)}, time.Time{}); err != nil {
		return fmt.Errorf("restored, but erasures not replayed (run 'proxy store replay-erasures' before serving): %w", err)
	}
	return nil
}
