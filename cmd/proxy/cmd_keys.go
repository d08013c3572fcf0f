package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
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
	if err := a.auditOnce(ctx, cfg, kek, audit.Record{Event: audit.KeysRotated, Outcome: "ok", Detail: detail}); err != nil {
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
	db.Close()
	return a.finishReencryption(ctx, cfg)
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
	for e.m.ReencryptPending() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted; re-encryption resumes at next start: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintln(a.stdout, "all data keys unwrap; every record is sealed under the newest record key")
	return nil
}
