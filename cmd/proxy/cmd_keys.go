package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/vault"
)

var cmdKeysStatus = &command{
	name:    "keys status",
	summary: "show the key provider and the data key versions (never key material)",
	run:     runKeysStatus,
}

func runKeysStatus(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	return a.withEngine(ctx, func(_ *policy.Config, e *engine) error { return keysStatus(ctx, a, e) })
}

func keysStatus(ctx context.Context, a *app, e *engine) error {
	st, err := e.kek.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "provider:          %s\nlocation:          %s\nkek version:       %d (oldest decryptable %d)\n",
		st.Provider, st.Location, st.CurrentVersion, st.MinDecrypt)
	for _, p := range vault.Purposes {
		cur, _ := e.keys.Current(p)
		fmt.Fprintf(a.stdout, "%-18s current v%d, versions %v\n", string(p)+" key:", cur, e.keys.Versions(p))
	}
	fmt.Fprintf(a.stdout, "re-encryption:     %s\n", map[bool]string{true: "pending", false: "none pending"}[e.m.ReencryptPending()])
	return nil
}

type rotateFlags struct{ recordKey, tokenKey bool }

func cmdKeysRotate() *command {
	var o rotateFlags
	return &command{
		name: "keys rotate",
		summary: "rotate the key encryption key (Vault transit key or local keyring) and rewrap the stored data keys; " +
			"tokens do not change",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&o.recordKey, "record-key", false, "also add a record key version and re-encrypt every record under it")
			fs.BoolVar(&o.tokenKey, "token-key", false, "also add a token key version: NEW addresses get tokens under it; known addresses keep theirs")
		},
		run: func(ctx context.Context, a *app, args []string) error { return runKeysRotate(ctx, a, args, o) },
	}
}

func runKeysRotate(ctx context.Context, a *app, args []string, o rotateFlags) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	cfg = asCLINode(cfg)
	db, kek, err := a.openKeys(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	defer kek.Close()
	if _, err := vault.Load(ctx, kek, db); err != nil { // refuse to rotate keys we cannot unwrap
		return fmt.Errorf("load data keys: %w", err)
	}
	detail := map[string]string{"kek": "rotate", "token_key": fmt.Sprint(o.tokenKey), "record_key": fmt.Sprint(o.recordKey)}
	if err := a.auditRotation(ctx, cfg, kek, db, detail); err != nil {
		return err
	}
	n, err := vault.RotateKEK(ctx, kek, db)
	if err != nil {
		return err
	}
	st, _ := kek.Status(ctx)
	fmt.Fprintf(a.stdout, "key encryption key rotated to v%d; %d data keys rewrapped\n", st.CurrentVersion, n)
	for _, add := range []struct {
		p  vault.Purpose
		on bool
	}{{vault.PurposeToken, o.tokenKey}, {vault.PurposeRecord, o.recordKey}} {
		p := add.p
		if !add.on {
			continue
		}
		v, err := vault.AddVersion(ctx, kek, db, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s key v%d added\n", p, v)
	}
	if cfg.Store.Backend == "etcd" {
		return a.awaitClusterReencryption(ctx, cfg, kek, db)
	}
	db.Close()
	return a.finishReencryption(ctx, cfg)
}

// auditRotation writes the keys.rotated record before anything rotates.
// On etcd it goes into the cluster's store, not a trail: this host's
// proxy serve may hold the trail the configuration names (its lock
// stopped the command before), and a node of the cluster delivers the
// record to its own trail once this command's node has ended
// (tokenize.AppendRecord). On bbolt the local trail takes it: the
// command runs with the proxy stopped, as the map's file is locked too.
func (a *app) auditRotation(ctx context.Context, cfg *policy.Config, kek vault.KEK, db tokenize.Store, detail map[string]string) error {
	if cfg.Store.Backend != "etcd" {
		return a.auditOnce(ctx, cfg, kek, audit.Record{Event: audit.KeysRotated, Outcome: "ok", Detail: detail})
	}
	c := tokenize.Change{Event: tokenize.EventKeysRotated, Actor: audit.ActorFrom(ctx), At: time.Now().UTC(), Detail: detail}
	if err := tokenize.AppendRecord(ctx, db, c); err != nil {
		return fmt.Errorf("audit the rotation (nothing rotated): %w", err)
	}
	fmt.Fprintln(a.stdout, "keys.rotated recorded in the cluster's store: a serving node writes it to its audit trail")
	return nil
}

// asCLINode gives a command that joins the cluster briefly a node id of
// its own, <node_id>-cli-<pid>: this host's proxy serve may hold the
// configured one, and a second holder is refused for a lease TTL.
func asCLINode(cfg *policy.Config) *policy.Config {
	if cfg.Store.Backend != "etcd" {
		return cfg
	}
	c := *cfg
	c.Store.Etcd.NodeID = readerNodeID(cfg.Store.Etcd.NodeID, "cli")
	return &c
}

// awaitClusterReencryption waits until every record of a cluster's map is
// sealed under the newest record key. The serving nodes pick the new
// versions up through their watch and the one that leads "reencrypt" does
// the work; this command's map campaigns too, so that a cluster with no
// node serving is finished here. It opens no audit trail: re-encryption
// writes no audit record, the rotation's went through the store
// (auditRotation), and this host's proxy may hold the trail.
func (a *app) awaitClusterReencryption(ctx context.Context, cfg *policy.Config, kek vault.KEK, db tokenize.Store) error {
	keys, err := vault.Load(ctx, kek, db)
	if err != nil {
		return fmt.Errorf("verify rotated keys: %w", err)
	}
	m, err := tokenize.NewMap(db, keys, mapOptions(cfg, a.log))
	if err != nil {
		return fmt.Errorf("verify rotated keys: %w", err)
	}
	defer m.Close()
	return a.awaitReencryption(ctx, m)
}

// finishReencryption reopens the engine, which re-encrypts records under
// the newest record key in the background, and waits for it here since the
// command is about to exit (a running proxy would simply go on serving).
func (a *app) finishReencryption(ctx context.Context, cfg *policy.Config) error {
	e, err := a.openEngine(ctx, cfg)
	if err != nil {
		return fmt.Errorf("verify rotated keys: %w", err)
	}
	defer e.Close()
	return a.awaitReencryption(ctx, e.m)
}

// awaitReencryption returns once no record is sealed under an older
// record key than m's newest.
func (a *app) awaitReencryption(ctx context.Context, m *tokenize.Map) error {
	for m.ReencryptPending() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted; re-encryption resumes at next start: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintln(a.stdout, "all data keys unwrap; every record is sealed under the newest record key")
	return nil
}
