package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

func cmdStoreMigrate() *command {
	var from, to string
	return &command{
		name: "store migrate",
		summary: "move the token map between bbolt and etcd (--from bbolt --to etcd, or back), tokens unchanged; " +
			"every node stopped first",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", "", "backend that holds the map now: bbolt | etcd")
			fs.StringVar(&to, "to", "", "backend to move it to: etcd | bbolt")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			if !validBackend(from) || !validBackend(to) || from == to {
				return usagef("want --from bbolt --to etcd, or --from etcd --to bbolt")
			}
			return runStoreMigrate(ctx, a, from, to)
		},
	}
}

func validBackend(b string) bool { return b == "bbolt" || b == "etcd" }

// runStoreMigrate opens the source as the proxy would (its keys, the
// local audit trail, the map, whose Close delivers the audit outbox),
// copies the map into the empty destination and records the move in the
// trail. The locks on the bbolt file and on the trail refuse to run next
// to a serving proxy on this node; other nodes of a cluster must be
// stopped by the operator (an etcd source has no lock to take).
func runStoreMigrate(ctx context.Context, a *app, from, to string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if err := migrateConfigOK(cfg, from); err != nil {
		return err
	}
	src := *cfg
	src.Store.Backend = from
	e, err := a.openEngine(ctx, &src)
	if err != nil {
		return err
	}
	defer e.Close()
	// Close delivers the outbox to the trail and stops the map's
	// background work, so nothing writes the source while it is copied.
	if err := e.m.Close(); err != nil {
		return fmt.Errorf("deliver the audit outbox before the move: %w", err)
	}
	dst := *cfg
	dst.Store.Backend = to
	db, err := a.openStore(ctx, &dst)
	if err != nil {
		return fmt.Errorf("open the destination (%s): %w", to, err)
	}
	defer db.Close()
	start := time.Now()
	st, err := tokenize.Copy(ctx, e.db, db)
	took := time.Since(start)
	if aerr := recordMigration(ctx, e.trail, from, to, st, err); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return migrateFailed(err, cfg, to)
	}
	a.log.Info("token map migrated", "event", "store_migrated", "from", from, "to", to,
		"tokens", st.Tokens, "tombstones", st.Tombstones, "seconds", took.Seconds())
	fmt.Fprintf(a.stdout, "migrated %d tokens (%d of them erased) and %d wrapped keys from %s to %s in %s\n",
		st.Tokens+st.Tombstones, st.Tombstones, st.Keys, describeStore(cfg, from), describeStore(cfg, to), took.Round(time.Millisecond))
	fmt.Fprintf(a.stdout, "next: set store.backend: %s and start the proxy. The old map at %s is left as it was: "+
		"erasures made from now on do not reach it, so delete it or keep it as securely as a backup.\n", to, describeStore(cfg, from))
	return nil
}

// migrateConfigOK checks that both ends are configured: the etcd side
// needs store.etcd, and a bbolt source must exist (opening it would
// create an empty map, with new keys).
func migrateConfigOK(cfg *policy.Config, from string) error {
	if len(cfg.Store.Etcd.Endpoints) == 0 {
		return errors.New("store.etcd.endpoints is empty: configure the cluster in store.etcd (store.backend may stay bbolt)")
	}
	if from == "bbolt" {
		if _, err := os.Stat(dbPath(cfg)); err != nil {
			return fmt.Errorf("no token map to move: %w", err)
		}
	}
	return nil
}

// recordMigration writes the store.migrated record, also for a failed
// move: the trail shows that the map was copied, or tried to be.
func recordMigration(ctx context.Context, trail *audit.Log, from, to string, st tokenize.CopyStats, err error) error {
	rec := audit.Record{Event: audit.StoreMigrated, Actor: audit.ActorFrom(ctx), Outcome: "ok",
		Count: st.Tokens + st.Tombstones, Detail: map[string]string{
			"from": from, "to": to, "tombstones": strconv.Itoa(st.Tombstones),
			"meta": strconv.Itoa(st.Meta), "keys": strconv.Itoa(st.Keys),
		}}
	switch {
	case errors.Is(err, tokenize.ErrNotEmpty), errors.Is(err, tokenize.ErrOutboxPending):
		rec.Outcome = "refused"
	case err != nil:
		rec.Outcome = "error"
	}
	if _, aerr := trail.Append(ctx, rec); aerr != nil {
		return fmt.Errorf("audit: %w", aerr)
	}
	return nil
}

// migrateFailed says how to start again: a refused copy left the
// destination untouched; a failed one left part of the map there.
func migrateFailed(err error, cfg *policy.Config, to string) error {
	switch {
	case errors.Is(err, tokenize.ErrOutboxPending):
		return fmt.Errorf("%w: start the proxy once and stop it, so the records reach the trail, then migrate again", err)
	case errors.Is(err, tokenize.ErrNotEmpty):
		return fmt.Errorf("%w: the destination %s must hold no map (move a bbolt file aside; use an etcd prefix no map uses)",
			err, describeStore(cfg, to))
	}
	return fmt.Errorf("%w: the destination %s holds part of the map (without its keys): clear it, then migrate again",
		err, describeStore(cfg, to))
}

// describeStore names a backend's location for the operator.
func describeStore(cfg *policy.Config, backend string) string {
	if backend == "bbolt" {
		return "bbolt (" + dbPath(cfg) + ")"
	}
	e := cfg.Store.Etcd
	return fmt.Sprintf("etcd (%s, prefix %s%s/)", strings.Join(e.Endpoints, ","), e.Prefix, cfg.Tokens.Tenant)
}
