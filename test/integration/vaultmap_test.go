package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// shared is this package's Vault dev server; tests that kill Vault start
// their own.
var shared *vaulttest.Server

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }

// countingTransport counts every request that reaches Vault.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// createTransitKey creates a transit key with a name no earlier run on the
// same server used (go test -count=N shares the package's server), and
// returns that name.
func createTransitKey(t *testing.T, srv *vaulttest.Server, base string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", base, keySeq.Add(1))
	if _, err := rootAPIClient(t, srv).Logical().Write("transit/keys/"+name, nil); err != nil {
		t.Fatalf("create transit key: %v", err)
	}
	// The audit trail's checkpoint key (audit.key's default); creating
	// an existing key is a no-op in transit.
	if _, err := rootAPIClient(t, srv).Logical().Write("transit/keys/tokenproxy-audit", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatalf("create audit key: %v", err)
	}
	return name
}

var keySeq atomic.Int64

var format = tokenize.Format{Prefix: "t", Domain: "relay.company.example", Length: tokenize.DefaultTokenLength}

// vaultMap is a token map whose keys come from Vault transit.
type vaultMap struct {
	db  *boltstore.Store
	kek *vault.Transit
	m   *tokenize.Map
}

func openVaultMap(t *testing.T, srv *vaulttest.Server, key, path string, rt http.RoundTripper) *vaultMap {
	t.Helper()
	ctx := context.Background()
	db, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := []vault.TransitOption{}
	if rt != nil {
		opts = append(opts, vault.WithHTTPTransport(rt))
	}
	kek, err := vault.NewTransit(ctx, vault.TransitConfig{Address: srv.Addr, Key: key, Token: srv.RootToken}, opts...)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	keys, err := vault.Load(ctx, kek, db)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tokenize.NewMap(db, keys, tokenize.Options{Format: format, Tenant: "it"})
	if err != nil {
		t.Fatal(err)
	}
	vm := &vaultMap{db: db, kek: kek, m: m}
	t.Cleanup(vm.close)
	return vm
}

func (v *vaultMap) close() {
	v.m.Close()
	v.kek.Close()
	v.db.Close()
}

func tokenizeN(t *testing.T, m *tokenize.Map, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := range n {
		addr := fmt.Sprintf("customer%d@example.net", i)
		iss, err := m.Tokenize(context.Background(), addr, "")
		if err != nil {
			t.Fatal(err)
		}
		out[iss.Address] = addr
	}
	return out
}

func assertResolves(t *testing.T, m *tokenize.Map, tokens map[string]string) {
	t.Helper()
	for tok, addr := range tokens {
		e, err := m.Resolve(context.Background(), tok)
		if err != nil || e.Original != addr {
			t.Fatalf("Resolve(%s) = %q, %v; want %q", tok, e.Original, err, addr)
		}
	}
}

func TestFirstStartRestartRotate(t *testing.T) {
	key := createTransitKey(t, shared, "lifecycle")
	path := filepath.Join(t.TempDir(), "map.db")
	first := openVaultMap(t, shared, key, path, nil)
	keys, _ := first.db.WrappedKeys(context.Background())
	if len(keys) != 2 {
		t.Fatalf("first start stored %d wrapped keys, want 2", len(keys))
	}
	for _, k := range keys {
		if !strings.HasPrefix(string(k.Wrapped), "vault:v1:") {
			t.Fatalf("%s key stored as %.12q…, want a transit ciphertext", k.Purpose, k.Wrapped)
		}
	}
	tokens := tokenizeN(t, first.m, 50)
	first.close()

	// Restart: the stored keys are unwrapped, earlier tokens resolve.
	second := openVaultMap(t, shared, key, path, nil)
	assertResolves(t, second.m, tokens)

	// Rotate the transit key, rewrap, add a record key version.
	ctx := context.Background()
	if _, err := vault.RotateKEK(ctx, second.kek, second.db); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AddVersion(ctx, second.kek, second.db, vault.PurposeRecord); err != nil {
		t.Fatal(err)
	}
	second.close()
	third := openVaultMap(t, shared, key, path, nil)
	deadline := time.Now().Add(30 * time.Second)
	for third.m.ReencryptPending() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if third.m.ReencryptPending() {
		t.Fatal("records were not re-encrypted")
	}
	keys, _ = third.db.WrappedKeys(ctx)
	for _, k := range keys {
		if !strings.HasPrefix(string(k.Wrapped), "vault:v2:") {
			t.Fatalf("%s v%d not rewrapped: %.12q…", k.Purpose, k.Version, k.Wrapped)
		}
	}
	assertResolves(t, third.m, tokens)
	for tok, addr := range tokens { // no token changed
		if iss, _ := third.m.Tokenize(ctx, addr, ""); iss.Address != tok {
			t.Fatalf("token of %s changed from %s to %s", addr, tok, iss.Address)
		}
	}
}

// TestZeroVaultCallsInSteadyState counts the requests Vault sees across
// 1,000 Tokenize and Resolve calls after start: none.
func TestZeroVaultCallsInSteadyState(t *testing.T) {
	key := createTransitKey(t, shared, "steady")
	var count countingTransport
	vm := openVaultMap(t, shared, key, filepath.Join(t.TempDir(), "map.db"), &count)
	atStart := count.n.Load()
	if atStart == 0 {
		t.Fatal("the counting transport saw no request at start; the test proves nothing")
	}
	ctx := context.Background()
	tokens := tokenizeN(t, vm.m, 100) // new tokens: no Vault call either
	for i := 0; i < 1000; i++ {
		if i%2 == 0 {
			if _, err := vm.m.Tokenize(ctx, fmt.Sprintf("customer%d@example.net", i%100), ""); err != nil {
				t.Fatal(err)
			}
			continue
		}
		for tok := range tokens {
			if _, err := vm.m.Resolve(ctx, tok); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if got := count.n.Load() - atStart; got != 0 {
		t.Fatalf("Vault saw %d requests during 1,100 token operations, want 0", got)
	}
}

// TestVaultStoppedAfterStart: keys are in memory, so mail keeps flowing;
// a restart without Vault refuses, naming Vault's address and the cause.
func TestVaultStoppedAfterStart(t *testing.T) {
	srv := vaulttest.Start(t)
	key := createTransitKey(t, srv, "outage")
	path := filepath.Join(t.TempDir(), "map.db")
	vm := openVaultMap(t, srv, key, path, nil)
	before := tokenizeN(t, vm.m, 10)
	srv.Kill()
	ctx := context.Background()
	assertResolves(t, vm.m, before)
	iss, err := vm.m.Tokenize(ctx, "new.after.outage@example.net", "")
	if err != nil || !iss.New {
		t.Fatalf("Tokenize during the Vault outage = %+v, %v", iss, err)
	}
	vm.close()

	_, err = vault.NewTransit(ctx, vault.TransitConfig{Address: srv.Addr, Key: key, Token: srv.RootToken})
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("NewTransit without Vault = %v; want an error naming %s and the cause", err, srv.Addr)
	}
	if !errors.Is(err, vault.ErrVaultUnavailable) {
		t.Fatalf("err = %v, want ErrVaultUnavailable", err)
	}
}
