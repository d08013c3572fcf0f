package compliance

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

func mapKeyring() *vault.Keyring {
	key := func() []byte { k := make([]byte, 32); rand.Read(k); return k }
	return vault.NewKeyring(map[vault.Purpose]map[uint32][]byte{
		vault.PurposeToken: {1: key()}, vault.PurposeRecord: {1: key()}})
}

func openMap(t *testing.T, path string, keys *vault.Keyring, a tokenize.Auditor) (*boltstore.Store, *tokenize.Map) {
	t.Helper()
	db, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tokenize.NewMap(db, keys, tokenize.Options{Tenant: "test", Audit: a,
		Format: tokenize.Format{Prefix: "t", Domain: "relay.example", Length: 16}})
	if err != nil {
		t.Fatal(err)
	}
	return db, m
}

// created returns the token.created records of a trail by token.
func created(t *testing.T, path string) map[string][]audit.Record {
	t.Helper()
	out := map[string][]audit.Record{}
	for _, r := range records(t, path) {
		if r.Event == audit.TokenCreated {
			out[r.Tokens[0]] = append(out[r.Tokens[0]], r)
		}
	}
	return out
}

func TestCreationsReachTheTrail(t *testing.T) {
	dir := t.TempDir()
	trailPath := filepath.Join(dir, "audit.jsonl")
	l := mustOpen(t, audit.Options{Path: trailPath, Sync: true})
	db, m := openMap(t, filepath.Join(dir, "map.db"), mapKeyring(), MapAudit{Log: l})
	ctx := audit.WithActor(context.Background(), "route:inbound")
	var toks []string
	for i := range 5 {
		iss, err := m.Tokenize(ctx, fmt.Sprintf("c%d@example.com", i), "")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, iss.Address)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	mustClose(t, l)

	got := created(t, trailPath)
	for _, tok := range toks {
		recs := got[tok]
		if len(recs) != 1 || recs[0].Actor != "route:inbound" || recs[0].Detail["ref"] == "" || recs[0].Detail["committed"] == "" {
			t.Errorf("records for %s: %+v; want one with actor, ref and commit time", tok, recs)
		}
	}
	requireOK(t, verifyFile(t, trailPath, nil))
}

// blockingMapAudit delivers, then holds the drain loop before it deletes
// the delivered entries: the moment a crash would leave them twice.
type blockingMapAudit struct {
	MapAudit
	delivered chan struct{}
	release   chan struct{}
}

func (b blockingMapAudit) Deliver(ctx context.Context, recs []tokenize.Change) error {
	if err := b.MapAudit.Deliver(ctx, recs); err != nil {
		return err
	}
	select {
	case b.delivered <- struct{}{}:
		<-b.release
	default:
	}
	return nil
}

func TestCreationsCrashBetweenDeliveryAndDelete(t *testing.T) {
	dir, crash := t.TempDir(), t.TempDir()
	trailPath, dbPath := filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "map.db")
	keys := mapKeyring()
	l := mustOpen(t, audit.Options{Path: trailPath, Sync: true})
	bc := blockingMapAudit{MapAudit{Log: l}, make(chan struct{}), make(chan struct{})}
	db, m := openMap(t, dbPath, keys, bc)
	iss, err := m.Tokenize(context.Background(), "jane@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	<-bc.delivered
	// The crash image: the record is in the trail and still in the outbox.
	for _, name := range []string{"map.db", "audit.jsonl", "audit.jsonl.head"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	close(bc.release)
	m.Close()
	db.Close()
	mustClose(t, l)

	trailPath, dbPath = filepath.Join(crash, "audit.jsonl"), filepath.Join(crash, "map.db")
	l = mustOpen(t, audit.Options{Path: trailPath, Sync: true})
	db, m = openMap(t, dbPath, keys, MapAudit{Log: l})
	if _, err := m.Tokenize(context.Background(), "other@example.com", ""); err != nil {
		t.Fatal(err)
	}
	m.Close()
	db.Close()
	mustClose(t, l)
	got := created(t, trailPath)
	if n := len(got[iss.Address]); n != 1 {
		t.Fatalf("the token created before the crash has %d creation records, want 1", n)
	}
	if len(got) != 2 {
		t.Fatalf("creation records for %d tokens, want 2", len(got))
	}
	requireOK(t, verifyFile(t, trailPath, nil))
}

// TestExpiriesReachTheTrail: one expiry batch is one token.expired record
// naming its tokens and outbox refs, and Delivered finds those refs (a
// crash between delivery and delete writes nothing twice).
func TestExpiriesReachTheTrail(t *testing.T) {
	dir := t.TempDir()
	trailPath := filepath.Join(dir, "audit.jsonl")
	l := mustOpen(t, audit.Options{Path: trailPath, Sync: true})
	ma := MapAudit{Log: l}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	detail := map[string]string{"max_idle": "24h0m0s"}
	ctx := context.Background()
	err := ma.Deliver(ctx, []tokenize.Change{
		{Ref: "r1", Event: tokenize.EventCreated, Token: "t1-a@relay.example", Actor: "route:inbound", At: at},
		{Ref: "r2", Event: tokenize.EventExpired, Token: "t1-b@relay.example", Actor: "system:retention", At: at, Detail: detail},
		{Ref: "r3", Event: tokenize.EventExpired, Token: "t1-c@relay.example", Actor: "system:retention", At: at, Detail: detail},
	})
	if err != nil {
		t.Fatal(err)
	}
	found, err := ma.Delivered(ctx, at.Add(-time.Hour), []string{"r1", "r3", "r9"})
	if err != nil || !found["r1"] || !found["r3"] || found["r9"] {
		t.Fatalf("Delivered = %v, %v; want r1 and r3", found, err)
	}
	mustClose(t, l)
	var expired []audit.Record
	for _, r := range records(t, trailPath) {
		if r.Event == audit.TokenExpired {
			expired = append(expired, r)
		}
	}
	if len(expired) != 1 || expired[0].Count != 2 || expired[0].Actor != "system:retention" ||
		expired[0].Detail["refs"] != "r2,r3" || expired[0].Detail["max_idle"] != "24h0m0s" {
		t.Fatalf("expiry records %+v; want one for the batch of two", expired)
	}
}

// TestKeysRotatedThroughTheOutbox: a rotation recorded in a shared
// store's outbox (tokenize.AppendRecord) reaches the trail as keys.rotated
// with its actor, detail, commit time and ref, naming no token, and its
// ref makes a second delivery recognisable.
func TestKeysRotatedThroughTheOutbox(t *testing.T) {
	trailPath := filepath.Join(t.TempDir(), "audit.jsonl")
	l := mustOpen(t, audit.Options{Path: trailPath, Sync: true})
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := tokenize.Change{Ref: "00000000000000000042-ab-0000", Event: tokenize.EventKeysRotated, Actor: "cli:root", At: at,
		Detail: map[string]string{"kek": "rotate", "record_key": "true"}}
	if err := (MapAudit{Log: l}).Deliver(context.Background(), []tokenize.Change{c}); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	var got *audit.Record
	for _, r := range records(t, trailPath) {
		if r.Event == audit.KeysRotated {
			got = &r
		}
	}
	switch {
	case got == nil:
		t.Fatal("no keys.rotated record in the trail")
	case got.Actor != "cli:root" || len(got.Tokens) != 0 || got.Detail["record_key"] != "true" ||
		got.Detail["committed"] != at.Format(time.RFC3339Nano) || got.Outcome != "ok":
		t.Errorf("record %+v", *got)
	}
	if refs := RefsOf(*got); len(refs) != 1 || refs[0] != c.Ref {
		t.Errorf("RefsOf = %v, want [%s]", refs, c.Ref)
	}
}
