package compliance

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Creations moves token-creation records from the token map's outbox
// (committed with each token) into the trail: the map's
// tokenize.CreateAuditor.
type Creations struct{ Log *audit.Log }

var _ tokenize.CreateAuditor = Creations{}

// Actor is the actor the caller's context carries (audit.WithActor).
func (t Creations) Actor(ctx context.Context) string { return audit.ActorFrom(ctx) }

// Ready is the trail's Err: creation stops while the trail cannot write.
func (t Creations) Ready() error { return t.Log.Err() }

// Deliver writes one token.created record per token. The record's time is
// when it reached the trail; "committed" is when the token was stored,
// and "ref" names the outbox entry, so a record is never written twice.
func (t Creations) Deliver(ctx context.Context, recs []tokenize.Created) error {
	out := make([]audit.Record, len(recs))
	for i, r := range recs {
		out[i] = audit.Record{Event: audit.TokenCreated, Actor: r.Actor, Tokens: []string{r.Token},
			Detail: map[string]string{"ref": r.Ref, "committed": r.At.UTC().Format(time.RFC3339Nano)}}
	}
	_, err := t.Log.Append(ctx, out...)
	return err
}

// Delivered reads the trail backwards to the first record older than
// since: records are appended in time order, and an outbox entry reaches
// the trail after its commit.
func (t Creations) Delivered(ctx context.Context, since time.Time, refs []string) (map[string]bool, error) {
	want := make(map[string]bool, len(refs))
	for _, r := range refs {
		want[r] = true
	}
	f, err := os.Open(t.Log.Path())
	if err != nil {
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	found := map[string]bool{}
	err = audit.ScanBackward(f, st.Size(), func(r audit.Record) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if r.Time.Before(since) {
			return false, nil
		}
		if ref := r.Detail["ref"]; r.Event == audit.TokenCreated && want[ref] {
			found[ref] = true
		}
		return len(found) < len(want), nil
	})
	return found, err
}
