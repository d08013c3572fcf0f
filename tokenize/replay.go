package tokenize

import (
	"context"
	"fmt"
)

// ReplayStats is what EraseTokens did with the tokens it was given.
type ReplayStats struct {
	Erased  []string // live tokens it made tombstones, as given
	Already int      // tokens that were tombstones already
	Unknown []string // tokens the map does not hold (or that are not tokens of this map), as given
}

// EraseTokens makes each live token of tokens a tombstone, batch by batch
// (Invariant 7: an erasure replayed from the audit trail after a restore
// brought the token back). Tombstones are left as they are; tokens the map
// does not hold are reported, not errors: a restored map may predate
// their creation. It writes no audit record: the caller records the
// replay, whose erasures were each audited when first made. Erased data
// is wiped at the end.
func (m *Map) EraseTokens(ctx context.Context, tokens []string) (ReplayStats, error) {
	var st ReplayStats
	batch := max(1, m.store.MaxBatch()/eraseWrites)
	for start := 0; start < len(tokens); start += batch {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := m.eraseBatch(ctx, tokens[start:min(start+batch, len(tokens))], &st); err != nil {
			return st, err
		}
	}
	if len(st.Erased) > 0 {
		if err := m.store.Wipe(ctx); err != nil {
			return st, err
		}
	}
	return st, nil
}

// eraseBatch erases one batch in one transaction and adds to st. The
// Update function may run more than once, so it classifies into fresh
// slices and st is changed only after the commit.
func (m *Map) eraseBatch(ctx context.Context, tokens []string, st *ReplayStats) error {
	var erased, unknown, locals []string
	already := 0
	err := m.store.Update(ctx, func(tx Tx) error {
		erased, unknown, locals, already = erased[:0], unknown[:0], locals[:0], 0
		for _, tok := range tokens {
			t, err := m.opts.Format.Parse(tok)
			if err != nil {
				unknown = append(unknown, tok)
				continue
			}
			raw, err := tx.Token(t.Local)
			if err != nil {
				return err
			}
			switch {
			case raw == nil:
				unknown = append(unknown, tok)
			case len(raw) > 0 && raw[0] == tombstoneFormat:
				already++
			default:
				if err := m.erase(tx, t.Local); err != nil {
					return fmt.Errorf("token %s: %w", t.Local, err)
				}
				erased, locals = append(erased, tok), append(locals, t.Local)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: replay erasures: %w", ErrStore, err)
	}
	for _, l := range locals {
		m.forget(l)
	}
	st.Erased = append(st.Erased, erased...)
	st.Unknown = append(st.Unknown, unknown...)
	st.Already += already
	return nil
}
