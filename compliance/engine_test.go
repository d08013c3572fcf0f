package compliance

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// testEngine is what `proxy serve` opens, built the same way from the
// default configuration in a temporary data directory: a bbolt file, a
// local keyring, an audit trail signed by a key derived from it, and the
// token map auditing its creations through MapAudit.
type testEngine struct {
	dir    string
	cfg    policy.Config
	db     *boltstore.Store
	kek    *vault.Local
	keys   *vault.Keyring
	signer *vault.LocalSigner
	trail  *audit.Log
	m      *tokenize.Map
	log    *slog.Logger
	closed sync.Once
}

func newTestEngine(t *testing.T, logs io.Writer) *testEngine {
	t.Helper()
	ctx := context.Background()
	e := &testEngine{dir: t.TempDir(), cfg: policy.Defaults(), log: slog.New(slog.NewJSONHandler(logs, nil))}
	var err error
	if e.db, err = boltstore.Open(filepath.Join(e.dir, "tokenproxy.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	if e.kek, err = vault.OpenLocal(filepath.Join(e.dir, "keyring.json"), vault.LocalOptions{Create: true, Logger: e.log}); err != nil {
		t.Fatal(err)
	}
	if e.signer, err = e.kek.AuditSigner(); err != nil {
		t.Fatal(err)
	}
	a := e.cfg.Audit
	e.trail, err = audit.Open(ctx, audit.Options{Path: filepath.Join(e.dir, "audit.jsonl"), Sync: a.Sync, Signer: e.signer,
		CheckpointEvery: a.CheckpointEvery, CheckpointInterval: a.CheckpointInterval, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	if e.keys, err = vault.Load(ctx, e.kek, e.db); err != nil {
		t.Fatal(err)
	}
	if e.m, err = tokenize.NewMap(e.db, e.keys, e.mapOptions()); err != nil {
		t.Fatal(err)
	}
	return e
}

// mapOptions are cmd/proxy's, for the default configuration.
func (e *testEngine) mapOptions() tokenize.Options {
	tk := e.cfg.Tokens
	return tokenize.Options{
		Format: tokenize.Format{Prefix: tk.Prefix, Domain: "relay.company.example", Length: tk.Length},
		Tenant: tk.Tenant, LocalCase: address.LocalCase(tk.LocalPartCase), Logger: e.log,
		SuppressErased: e.cfg.Compliance.AfterErasure == "refuse", Audit: MapAudit{Log: e.trail},
	}
}

// service is the compliance service over the engine, as serve builds it.
func (e *testEngine) service(c policy.Compliance) *Service {
	return New(Options{Map: e.m, DB: e.db, Trail: e.trail, Keys: e.auditKeys, Config: c, Log: e.log})
}

func (e *testEngine) auditKeys(ctx context.Context) (audit.Keys, error) {
	pubs, err := e.signer.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := audit.Keys{}
	for v, p := range pubs {
		keys.Add(e.signer.KeyID(), v, p)
	}
	return keys, nil
}

// close closes the engine once; tests that check what closing logs call
// it before the cleanup does.
func (e *testEngine) close() { e.closed.Do(e.closeOnce) }

func (e *testEngine) closeOnce() {
	if e.m != nil {
		e.m.Close()
	}
	if e.trail != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e.trail.Close(ctx)
		cancel()
	}
	if e.kek != nil {
		e.kek.Close()
	}
	e.db.Close()
}
