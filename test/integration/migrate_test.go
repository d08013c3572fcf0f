package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// migrateNode writes a node's configuration with the map in bbolt and
// store.etcd pointing at the cluster, as an operator sets it up before
// `proxy store migrate --from bbolt --to etcd`.
func migrateNode(t *testing.T, endpoints []string) served {
	t.Helper()
	crm, smart := startMemSink(t), startMemSink(t)
	sv := writeServeConfig(t, crm.addr, smart.addr, "info", "client_networks: [127.0.0.0/8]")
	f, err := os.OpenFile(sv.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, `keys: {provider: local, local: {key_file: %s}}
store:
  backend: bbolt
  etcd: {endpoints: ["%s"], node_id: node-a}
`, filepath.Join(sv.dataDir, "keyring.json"), strings.Join(endpoints, `", "`))
	return sv
}

// mapHandle is the token map of a node's configuration opened in the
// test process, as openEngine opens it: for filling a map quickly and
// resolving every token of it, which 10,000 runs of the binary would not.
type mapHandle struct {
	m     *tokenize.Map
	db    tokenize.Store
	kek   *vault.Local
	trail *audit.Log
}

func openMapOf(t *testing.T, sv served, backend string) *mapHandle {
	t.Helper()
	ctx := context.Background()
	cfg, err := policy.Load(sv.config)
	if err != nil {
		t.Fatal(err)
	}
	h := &mapHandle{}
	if backend == "bbolt" {
		h.db, err = boltstore.Open(filepath.Join(cfg.DataDir, "tokenproxy.db"))
	} else {
		e := cfg.Store.Etcd
		h.db, err = etcdstore.Open(ctx, etcdstore.Options{Endpoints: e.Endpoints, Prefix: e.Prefix,
			Tenant: cfg.Tokens.Tenant, NodeID: e.NodeID})
	}
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := h.db.WrappedKeys(ctx)
	if h.kek, err = vault.OpenLocal(cfg.Keys.Local.KeyFile, vault.LocalOptions{Create: len(keys) == 0, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	signer, err := h.kek.AuditSigner()
	if err != nil {
		t.Fatal(err)
	}
	if h.trail, err = audit.Open(ctx, audit.Options{Path: filepath.Join(cfg.DataDir, "audit.jsonl"), Signer: signer}); err != nil {
		t.Fatal(err)
	}
	ring, err := vault.Load(ctx, h.kek, h.db)
	if err != nil {
		t.Fatal(err)
	}
	h.m, err = tokenize.NewMap(h.db, ring, tokenize.Options{
		Format: tokenize.Format{Prefix: cfg.Tokens.Prefix, Domain: cfg.RelayDomain, Length: cfg.Tokens.Length},
		Tenant: cfg.Tokens.Tenant, Audit: compliance.MapAudit{Log: h.trail}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *mapHandle) close(t *testing.T) {
	t.Helper()
	if err := h.m.Close(); err != nil {
		t.Error(err)
	}
	if err := h.trail.Close(context.Background()); err != nil {
		t.Error(err)
	}
	h.kek.Close()
	h.db.Close()
}

// fillMap makes n tokens on the node's bbolt map and erases every
// twentieth; it returns token → address and the erased tokens.
func fillMap(t *testing.T, sv served, n int) (map[string]string, map[string]bool) {
	t.Helper()
	ctx := audit.WithActor(context.Background(), "test")
	h := openMapOf(t, sv, "bbolt")
	defer h.close(t)
	tokens, erased := map[string]string{}, map[string]bool{}
	for i := range n {
		addr := fmt.Sprintf("customer%05d@example.com", i)
		iss, err := h.m.Tokenize(ctx, addr, "")
		if err != nil {
			t.Fatal(err)
		}
		tokens[iss.Address] = addr
		if i%20 == 0 {
			if err := h.m.Erase(ctx, iss.Address); err != nil {
				t.Fatal(err)
			}
			erased[iss.Address] = true
		}
	}
	return tokens, erased
}

// checkMap resolves every token on the node's map in backend.
func checkMap(t *testing.T, sv served, backend string, tokens map[string]string, erased map[string]bool) {
	t.Helper()
	h := openMapOf(t, sv, backend)
	defer h.close(t)
	for tok, addr := range tokens {
		e, err := h.m.Resolve(context.Background(), tok)
		switch {
		case erased[tok] && !errors.Is(err, tokenize.ErrUnknownToken):
			t.Fatalf("%s: erased token %s: %v, want unknown", backend, tok, err)
		case !erased[tok] && (err != nil || e.Original != addr):
			t.Fatalf("%s: token %s resolves to %q, %v", backend, tok, e.Original, err)
		}
	}
}

var migratedRE = regexp.MustCompile(`migrated (\d+) tokens \((\d+) of them erased\)`)

// migrate runs `proxy store migrate` and returns how long it took.
func migrate(t *testing.T, sv served, from, to string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	r := runProxyBounded(t, 5*time.Minute, sv.config, "store", "migrate", "--from", from, "--to", to)
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("store migrate --from %s --to %s: exit %d\n%s%s", from, to, r.code, r.stdout, r.log)
	}
	m := migratedRE.FindStringSubmatch(r.stdout)
	if m == nil || m[1] != fmt.Sprint(want) {
		t.Fatalf("store migrate --from %s --to %s: want %d tokens moved:\n%s", from, to, want, r.stdout)
	}
	if strings.Contains(r.log+r.stdout, "@example.com") {
		t.Errorf("store migrate printed an address:\n%s%s", r.stdout, r.log)
	}
	return took
}

// TestStoreMigrate moves a map of 10,000 tokens (500 erased) from bbolt
// into a 3-member etcd cluster and back: after each step every token
// resolves to its address and the erased ones stay erased, the trail has
// a store.migrated record for each move, and `proxy audit verify` passes.
// A second move into the now full cluster is refused.
func TestStoreMigrate(t *testing.T) {
	cl := etcdtest.Start(t)
	sv := migrateNode(t, cl.Endpoints())
	const n = 10000
	tokens, erased := fillMap(t, sv, n)

	toEtcd := migrate(t, sv, "bbolt", "etcd", n)
	checkMap(t, sv, "etcd", tokens, erased)
	if r := runProxyBounded(t, time.Minute, sv.config, "store", "migrate", "--from", "bbolt", "--to", "etcd"); r.code != 1 ||
		!strings.Contains(r.log, "not empty") {
		t.Fatalf("a second move into the cluster: exit %d, want 1 and 'not empty'\n%s%s", r.code, r.stdout, r.log)
	}

	db := filepath.Join(sv.dataDir, "tokenproxy.db")
	if err := os.Rename(db, db+".before-etcd"); err != nil {
		t.Fatal(err)
	}
	toBolt := migrate(t, sv, "etcd", "bbolt", n)
	checkMap(t, sv, "bbolt", tokens, erased)
	t.Logf("10,000 tokens (500 erased): bbolt → etcd %s, etcd → bbolt %s (whole command)", toEtcd, toBolt)

	if r := runProxyBounded(t, time.Minute, sv.config, "audit", "verify"); r.code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.log)
	}
	migrations := countEvents(t, filepath.Join(sv.dataDir, "audit.jsonl"), audit.StoreMigrated)
	if migrations != 3 { // two moves and the refused one
		t.Fatalf("%d store.migrated records, want 3", migrations)
	}
}

func countEvents(t *testing.T, path, event string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	err = audit.Select(f, audit.Query{Events: []string{event}}, func(audit.Record) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}
