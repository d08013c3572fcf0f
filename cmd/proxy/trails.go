package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// This file reads several nodes' trails at once: the erasures a replay
// re-applies, and the refs and creations the cluster verify compares.

// isErasure reports whether a record states that its tokens were erased:
// an officer's erasure (written before the map is changed, so it is
// replayed even if that change then failed: the officer asked for it),
// a retention expiry, and token.erased. A refused or not_found
// compliance.erase erased nothing.
func isErasure(r audit.Record) bool {
	switch r.Event {
	case audit.ComplianceErase:
		return r.Outcome == "ok"
	case audit.TokenExpired, audit.TokenErased:
		return r.Outcome == "" || r.Outcome == "ok"
	}
	return false
}

// scanTrail calls fn for each record of the trail at path.
func scanTrail(ctx context.Context, path string, fn func(audit.Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read trail: %w", err)
	}
	defer f.Close()
	err = audit.Scan(f, func(r audit.Record, _ []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(r)
	})
	if err != nil {
		return fmt.Errorf("trail %s: %w", path, err)
	}
	return nil
}

// erasedTokens collects the tokens of every erasure record at or after
// since in the trails, each once, in order.
func erasedTokens(ctx context.Context, paths []string, since time.Time) ([]string, error) {
	seen := map[string]bool{}
	for _, p := range paths {
		err := scanTrail(ctx, p, func(r audit.Record) error {
			if isErasure(r) && !r.Time.Before(since) {
				for _, t := range r.Tokens {
					seen[strings.ToLower(t)] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// tokenLocal is a token's local part in lower case (compliance.TokenLocal).
func tokenLocal(tok string) string { return compliance.TokenLocal(tok) }
