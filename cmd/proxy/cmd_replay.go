package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// replayRecordTokens bounds the tokens one replay record lists, so that a
// large replay stays far below audit.MaxLineSize (about 40 bytes a token).
const replayRecordTokens = 1000

func cmdStoreReplayErasures() *command {
	var trails, since string
	return &command{
		name: "store replay-erasures",
		summary: "after a restore (bbolt backup or etcd snapshot): erase again every token the audit trails say was erased " +
			"(Invariant 7); the proxy on this node stopped",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&trails, "trails", "", "`directory` of every node's trail (<node id>.jsonl); default: this node's audit.path")
			fs.StringVar(&since, "since", "", "only erasures at or after this RFC 3339 `time` (the backup's or snapshot's; default: all)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := nArgs(args, 0, ""); err != nil {
				return err
			}
			var t time.Time
			if since != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, since); err != nil {
					return usagef("--since must be an RFC 3339 time")
				}
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			paths, err := replayTrails(cfg, trails)
			if err != nil {
				return err
			}
			return runReplayErasures(ctx, a, cfg, paths, t)
		},
	}
}

// replayTrails are the trails to read: every trail in dir, or this
// node's own (a single node's trail holds every erasure of its map).
func replayTrails(cfg *policy.Config, dir string) ([]string, error) {
	if dir == "" {
		return []string{auditPath(cfg)}, nil
	}
	files, err := trailFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("--trails %s holds no <node id>.jsonl trail", dir)
	}
	return slices.Sorted(maps.Values(files)), nil
}

// runReplayErasures reads the erasures from the trails (before the
// engine opens this node's trail for writing), erases what the map holds
// live of them, and records the replay.
func runReplayErasures(ctx context.Context, a *app, cfg *policy.Config, paths []string, since time.Time) error {
	tokens, err := erasedTokens(ctx, paths, since)
	if err != nil {
		return err
	}
	e, err := a.openEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	st, err := e.m.EraseTokens(ctx, tokens)
	// Recorded after the erasure, also a failed one: each token's erasure
	// was audited when first made; this record says it was made again.
	if aerr := recordReplay(ctx, e.trail, st, len(paths), since, err); aerr != nil {
		return fmt.Errorf("erasures replayed, but not recorded: %w", aerr)
	}
	if err != nil {
		return fmt.Errorf("replay erasures (%d erased before the failure): %w", len(st.Erased), err)
	}
	a.log.Info("erasures replayed", "event", "erasures_replayed", "erased", len(st.Erased),
		"already", st.Already, "unknown", len(st.Unknown), "trails", len(paths))
	printReplay(a, st, len(tokens), len(paths))
	return nil
}

// recordReplay writes the replay's records: the tokens erased again, at
// most replayRecordTokens a record, each with the replay's totals; one
// record when nothing needed erasing.
func recordReplay(ctx context.Context, trail *audit.Log, st tokenize.ReplayStats, trails int, since time.Time, err error) error {
	detail := map[string]string{
		"erased": strconv.Itoa(len(st.Erased)), "already_erased": strconv.Itoa(st.Already),
		"unknown": strconv.Itoa(len(st.Unknown)), "trails": strconv.Itoa(trails),
	}
	if !since.IsZero() {
		detail["since"] = since.UTC().Format(time.RFC3339)
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	var recs []audit.Record
	for chunk := range slices.Chunk(st.Erased, replayRecordTokens) {
		recs = append(recs, audit.Record{Event: audit.ErasuresReplayed, Actor: audit.ActorFrom(ctx),
			Tokens: chunk, Count: len(chunk), Outcome: outcome, Detail: detail})
	}
	if len(recs) == 0 {
		recs = append(recs, audit.Record{Event: audit.ErasuresReplayed, Actor: audit.ActorFrom(ctx), Outcome: outcome, Detail: detail})
	}
	_, aerr := trail.Append(ctx, recs...)
	return aerr
}

func printReplay(a *app, st tokenize.ReplayStats, named, trails int) {
	fmt.Fprintf(a.stdout, "%d erased token(s) named in %d trail(s): %d erased again, %d already erased, %d not in the map\n",
		named, trails, len(st.Erased), st.Already, len(st.Unknown))
	for _, t := range st.Erased {
		fmt.Fprintf(a.stdout, "  erased again: %s\n", t)
	}
	if len(st.Unknown) > 0 {
		// Not an error: a token created after the backup and erased
		// later is not in the restored map at all.
		fmt.Fprintf(a.stdout, "  not in the map (created after the backup, or not a token of this map): %d\n", len(st.Unknown))
	}
}
