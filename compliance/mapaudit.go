package compliance

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// MapAudit moves the records the token map commits with its changes
// (each token's creation, each expiry) from the map's outbox into the
// trail: the map's tokenize.Auditor.
type MapAudit struct{ Log *audit.Log }

var _ tokenize.Auditor = MapAudit{}

// Actor is the actor the caller's context carries (audit.WithActor).
func (t MapAudit) Actor(ctx context.Context) string { return audit.ActorFrom(ctx) }

// Ready is the trail's Err: creation and expiry stop while the trail
// cannot write.
func (t MapAudit) Ready() error { return t.Log.Err() }

// Deliver writes one token.created record per new token, and one
// token.expired record per expiry batch (the changes one transaction
// committed together). The record's time is when it reached the trail;
// "committed" is when the change was stored, and "ref" ("refs" for a
// batch) names the outbox entries, so a record is never written twice.
func (t MapAudit) Deliver(ctx context.Context, changes []tokenize.Change) error {
	var out []audit.Record
	for i := 0; i < len(changes); {
		n := batchLen(changes[i:])
		out = append(out, record(changes[i:i+n]))
		i += n
	}
	_, err := t.Log.Append(ctx, out...)
	return err
}

// batchLen is how many changes from the first one form one record:
// expiries of one transaction (same time, actor and detail) share one.
func batchLen(cs []tokenize.Change) int {
	if cs[0].Event != tokenize.EventExpired {
		return 1
	}
	n := 1
	for n < len(cs) && cs[n].Event == tokenize.EventExpired && cs[n].At.Equal(cs[0].At) &&
		cs[n].Actor == cs[0].Actor && maps.Equal(cs[n].Detail, cs[0].Detail) {
		n++
	}
	return n
}

// record is the trail record of one change, or of a batch of expiries.
func record(cs []tokenize.Change) audit.Record {
	first := cs[0]
	detail := map[string]string{"committed": first.At.UTC().Format(time.RFC3339Nano)}
	maps.Copy(detail, first.Detail)
	if first.Event == tokenize.EventKeysRotated {
		detail["ref"] = first.Ref
		return audit.Record{Event: audit.KeysRotated, Actor: first.Actor, Outcome: "ok", Detail: detail}
	}
	if first.Event != tokenize.EventExpired {
		detail["ref"] = first.Ref
		return audit.Record{Event: audit.TokenCreated, Actor: first.Actor, Tokens: []string{first.Token}, Detail: detail}
	}
	tokens, refs := make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		tokens[i], refs[i] = c.Token, c.Ref
	}
	detail["refs"] = strings.Join(refs, ",")
	return audit.Record{Event: audit.TokenExpired, Actor: first.Actor, Tokens: tokens, Count: len(cs),
		Outcome: "ok", Detail: detail}
}

// Delivered reads the trail backwards to the first record older than
// since: records are appended in time order, and an outbox entry reaches
// the trail after its commit.
func (t MapAudit) Delivered(ctx context.Context, since time.Time, refs []string) (map[string]bool, error) {
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
		for _, ref := range RefsOf(r) {
			if want[ref] {
				found[ref] = true
			}
		}
		return len(found) < len(want), nil
	})
	return found, err
}

// RefsOf returns the outbox refs a trail record names: a token.created
// record (and a keys.rotated one that came through a store's outbox,
// tokenize.AppendRecord) its "ref", a token.expired batch its "refs". A ref names one
// change of the map; a record that carries refs already in the trail was
// delivered twice (a crash between delivery and the outbox delete, or a
// dead node's outbox delivered by another node).
func RefsOf(r audit.Record) []string {
	switch r.Event {
	case audit.TokenCreated, audit.KeysRotated:
		if ref := r.Detail["ref"]; ref != "" {
			return []string{ref}
		}
	case audit.TokenExpired:
		if refs := r.Detail["refs"]; refs != "" {
			return strings.Split(refs, ",")
		}
	}
	return nil
}
