package vault_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/tokenproxy/tokenproxy/test/logbuf"
	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// shared is the Vault dev server of this package's tests. Tests that kill
// their server or need TLS start their own.
var shared *vaulttest.Server

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }

// memStore is a Store in memory, standing in for the map's meta bucket.
type memStore struct {
	mu   sync.Mutex
	keys map[string]vault.WrappedKey
}

func newMemStore() *memStore { return &memStore{keys: map[string]vault.WrappedKey{}} }

func (s *memStore) WrappedKeys(context.Context) ([]vault.WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []vault.WrappedKey
	for _, k := range s.keys {
		k.Wrapped = slices.Clone(k.Wrapped)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b vault.WrappedKey) int {
		return strings.Compare(fmt.Sprint(a.Purpose, a.Version), fmt.Sprint(b.Purpose, b.Version))
	})
	return out, nil
}

func (s *memStore) PutWrappedKeys(_ context.Context, keys []vault.WrappedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		k.Wrapped = slices.Clone(k.Wrapped)
		s.keys[fmt.Sprint(k.Purpose, "/", k.Version)] = k
	}
	return nil
}

// countingTransport counts the requests that reach Vault.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// logBuffer collects every log line of a test, so the test can prove no
// token or key reached the log.
type logBuffer struct{ logbuf.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// assertNotLogged fails if a secret appears in the log, raw or base64.
func (b *logBuffer) assertNotLogged(t *testing.T, secrets ...[]byte) {
	t.Helper()
	logged := b.String()
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		if strings.Contains(logged, string(s)) || strings.Contains(logged, base64.StdEncoding.EncodeToString(s)) {
			t.Errorf("a secret (%d bytes) appears in the log", len(s))
		}
	}
}

// rootClient is an admin client for setting up keys, policies and roles.
func rootClient(t *testing.T, srv *vaulttest.Server) *api.Client {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = srv.Addr
	if srv.CACertFile != "" {
		if err := conf.ConfigureTLS(&api.TLSConfig{CACert: srv.CACertFile}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(srv.RootToken)
	return c
}

func mustWrite(t *testing.T, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// createKey creates a transit key of the test's own and returns its name:
// tests sharing a server (also across -count runs) never see each other's
// rotations.
func createKey(t *testing.T, srv *vaulttest.Server, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, keySeq.Add(1))
	mustWrite(t, rootClient(t, srv), "transit/keys/"+name, nil)
	return name
}

var keySeq atomic.Int64

// newTransit opens a Transit on srv and closes it when the test ends.
func newTransit(t *testing.T, cfg vault.TransitConfig, opts ...vault.TransitOption) *vault.Transit {
	t.Helper()
	tr, err := vault.NewTransit(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("NewTransit: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func rootConfig(srv *vaulttest.Server, key string) vault.TransitConfig {
	return vault.TransitConfig{Address: srv.Addr, Key: key, Token: srv.RootToken, CACert: srv.CACertFile}
}

func mustLoad(t *testing.T, kek vault.KEK, store vault.Store) *vault.Keyring {
	t.Helper()
	kr, err := vault.Load(context.Background(), kek, store)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return kr
}

func assertWrappedPrefix(t *testing.T, store *memStore, prefix string) {
	t.Helper()
	keys, _ := store.WrappedKeys(context.Background())
	if len(keys) == 0 {
		t.Fatal("no wrapped keys stored")
	}
	for _, k := range keys {
		if !strings.HasPrefix(string(k.Wrapped), prefix) {
			t.Errorf("%s v%d stored as %.12q…, want prefix %q", k.Purpose, k.Version, k.Wrapped, prefix)
		}
	}
}

func assertSameKeys(t *testing.T, a, b *vault.Keyring) {
	t.Helper()
	for _, p := range vault.Purposes {
		if !slices.Equal(a.Versions(p), b.Versions(p)) {
			t.Fatalf("%s versions %v and %v differ", p, a.Versions(p), b.Versions(p))
		}
		for _, v := range a.Versions(p) {
			ka, _ := a.Key(p, v)
			kb, _ := b.Key(p, v)
			if !bytes.Equal(ka, kb) {
				t.Errorf("%s key v%d differs between loads", p, v)
			}
		}
	}
}

func TestTransitFirstStartThenRestart(t *testing.T) {
	key := createKey(t, shared, "first-start")
	var logs logBuffer
	store := newMemStore()
	first := mustLoad(t, newTransit(t, rootConfig(shared, key), vault.WithLogger(logs.logger())), store)

	assertWrappedPrefix(t, store, "vault:v1:")
	stored, _ := store.WrappedKeys(context.Background())
	if len(stored) != len(vault.Purposes) {
		t.Fatalf("stored %d keys, want one per purpose (%d)", len(stored), len(vault.Purposes))
	}
	for _, p := range vault.Purposes {
		v, plain := first.Current(p)
		if v != 1 || len(plain) != vault.DataKeyBytes {
			t.Fatalf("%s: version %d, %d bytes; want version 1, %d bytes", p, v, len(plain), vault.DataKeyBytes)
		}
		for _, k := range stored {
			if bytes.Contains(k.Wrapped, plain) || bytes.Contains(k.Wrapped, []byte(base64.StdEncoding.EncodeToString(plain))) {
				t.Errorf("stored %s key holds the plaintext of the %s key", k.Purpose, p)
			}
		}
		logs.assertNotLogged(t, plain)
	}

	second := mustLoad(t, newTransit(t, rootConfig(shared, key), vault.WithLogger(logs.logger())), store)
	assertSameKeys(t, first, second)
	if again, _ := store.WrappedKeys(context.Background()); !slices.EqualFunc(stored, again, wrappedEqual) {
		t.Error("a restart changed the stored keys")
	}
	logs.assertNotLogged(t, []byte(shared.RootToken))
}

func wrappedEqual(a, b vault.WrappedKey) bool {
	return a.Purpose == b.Purpose && a.Version == b.Version && bytes.Equal(a.Wrapped, b.Wrapped)
}

func TestTransitRotateKEKRewraps(t *testing.T) {
	key := createKey(t, shared, "rotate")
	ctx := context.Background()
	store := newMemStore()
	tr := newTransit(t, rootConfig(shared, key))
	before := mustLoad(t, tr, store)

	n, err := vault.RotateKEK(ctx, tr, store)
	if err != nil {
		t.Fatalf("RotateKEK: %v", err)
	}
	if n != len(vault.Purposes) {
		t.Errorf("RotateKEK rewrapped %d keys, want %d", n, len(vault.Purposes))
	}
	assertWrappedPrefix(t, store, "vault:v2:")
	after := mustLoad(t, newTransit(t, rootConfig(shared, key)), store)
	assertSameKeys(t, before, after)

	st, err := tr.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Provider != "vault-transit" || st.CurrentVersion != 2 || st.MinDecrypt != 1 {
		t.Errorf("Status = %+v, want vault-transit, current 2, min decrypt 1", st)
	}
}

func TestTransitAddVersion(t *testing.T) {
	key := createKey(t, shared, "add-version")
	ctx := context.Background()
	store := newMemStore()
	tr := newTransit(t, rootConfig(shared, key))
	before := mustLoad(t, tr, store)

	v, err := vault.AddVersion(ctx, tr, store, vault.PurposeRecord)
	if err != nil || v != 2 {
		t.Fatalf("AddVersion = %d, %v; want 2", v, err)
	}
	after := mustLoad(t, tr, store)
	if got := after.Versions(vault.PurposeRecord); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("record versions %v, want [1 2]", got)
	}
	if got := after.Versions(vault.PurposeToken); !slices.Equal(got, []uint32{1}) {
		t.Errorf("token versions %v, want [1]", got)
	}
	old, _ := before.Key(vault.PurposeRecord, 1)
	if k, _ := after.Key(vault.PurposeRecord, 1); !bytes.Equal(k, old) {
		t.Error("record key v1 changed")
	}
	if k, _ := after.Key(vault.PurposeRecord, 2); bytes.Equal(k, old) {
		t.Error("record key v2 equals v1")
	}
}

// transitPolicy grants what the proxy needs on one key, minus the
// endpoints listed in omit.
func transitPolicy(key string, omit ...string) string {
	rules := map[string]string{
		"datakey/wrapped": `"update"`,
		"decrypt":         `"update"`,
		"rewrap":          `"update"`,
		"keys":            `"read"`,
	}
	var b strings.Builder
	for endpoint, caps := range rules {
		if !slices.Contains(omit, endpoint) {
			fmt.Fprintf(&b, "path \"transit/%s/%s\" { capabilities = [%s] }\n", endpoint, key, caps)
		}
	}
	if !slices.Contains(omit, "rotate") {
		fmt.Fprintf(&b, "path \"transit/keys/%s/rotate\" { capabilities = [\"update\"] }\n", key)
	}
	return b.String()
}

func putPolicy(t *testing.T, c *api.Client, name, rules string) {
	t.Helper()
	if err := c.Sys().PutPolicy(name, rules); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

// ensureAppRole enables the AppRole auth method unless it is mounted.
func ensureAppRole(t *testing.T, c *api.Client) {
	t.Helper()
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auths["approle/"]; ok {
		return
	}
	if err := c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
}

// appRole creates a role with the given policy and returns its role_id.
func appRole(t *testing.T, c *api.Client, role, policy string, extra map[string]any) string {
	t.Helper()
	ensureAppRole(t, c)
	data := map[string]any{"token_policies": policy, "token_ttl": "1h", "token_max_ttl": "4h"}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(t, c, "auth/approle/role/"+role, data)
	s, err := c.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	return s.Data["role_id"].(string)
}

func newSecretID(t *testing.T, c *api.Client, role string) string {
	t.Helper()
	return mustWrite(t, c, "auth/approle/role/"+role+"/secret-id", nil).Data["secret_id"].(string)
}

// newWrappedSecretID asks Vault to response-wrap a new secret_id, as a
// deployment tool would, and returns the wrapping token.
func newWrappedSecretID(t *testing.T, c *api.Client, role string) string {
	t.Helper()
	wc, err := c.Clone()
	if err != nil {
		t.Fatal(err)
	}
	wc.SetToken(c.Token())
	wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	s := mustWrite(t, wc, "auth/approle/role/"+role+"/secret-id", nil)
	if s.WrapInfo == nil || s.WrapInfo.Token == "" {
		t.Fatal("secret-id answer is not wrapped")
	}
	return s.WrapInfo.Token
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func appRoleConfig(srv *vaulttest.Server, key, roleID, secretIDFile string, wrapped bool) vault.TransitConfig {
	return vault.TransitConfig{Address: srv.Addr, Key: key, AppRole: &vault.AppRoleConfig{
		RoleIDFile: "", RoleID: roleID, SecretIDFile: secretIDFile, SecretIDWrapped: wrapped,
	}}
}

func TestTransitAppRoleLogin(t *testing.T) {
	key := createKey(t, shared, "approle")
	root := rootClient(t, shared)
	putPolicy(t, root, "tokenproxy-approle", transitPolicy(key))
	roleID := appRole(t, root, "tokenproxy", "tokenproxy-approle", nil)
	store := newMemStore()
	var logs logBuffer

	secretID := newSecretID(t, root, "tokenproxy")
	cfg := appRoleConfig(shared, key, "", writeFile(t, "secret_id", secretID), false)
	cfg.AppRole.RoleIDFile = writeFile(t, "role_id", roleID)
	first := mustLoad(t, newTransit(t, cfg, vault.WithLogger(logs.logger())), store)
	assertWrappedPrefix(t, store, "vault:v1:")

	t.Run("wrapped secret_id", func(t *testing.T) {
		wrapFile := writeFile(t, "wrapped_secret_id", newWrappedSecretID(t, root, "tokenproxy"))
		cfg := appRoleConfig(shared, key, roleID, wrapFile, true)
		second := mustLoad(t, newTransit(t, cfg, vault.WithLogger(logs.logger())), store)
		assertSameKeys(t, first, second)

		_, err := vault.NewTransit(context.Background(), cfg, vault.WithLogger(logs.logger()))
		if !errors.Is(err, vault.ErrVaultDenied) || !strings.Contains(err.Error(), wrapFile) {
			t.Errorf("second use of the wrapping token: %v; want ErrVaultDenied naming %s", err, wrapFile)
		}
	})
	t.Run("wrong secret_id", func(t *testing.T) {
		cfg := appRoleConfig(shared, key, roleID, writeFile(t, "secret_id", "00000000-0000-0000-0000-000000000000"), false)
		_, err := vault.NewTransit(context.Background(), cfg)
		if !errors.Is(err, vault.ErrVaultDenied) || !strings.Contains(err.Error(), "auth/approle/login") {
			t.Errorf("NewTransit with a wrong secret_id: %v; want ErrVaultDenied naming auth/approle/login", err)
		}
	})
	t.Run("wrapped token of another origin", func(t *testing.T) {
		wc, _ := root.Clone()
		wc.SetToken(root.Token())
		wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
		s, err := wc.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": "chosen-by-attacker"})
		if err != nil {
			t.Fatal(err)
		}
		cfg := appRoleConfig(shared, key, roleID, writeFile(t, "wrapped", s.WrapInfo.Token), true)
		_, err = vault.NewTransit(context.Background(), cfg)
		if !errors.Is(err, vault.ErrVaultDenied) || !strings.Contains(err.Error(), "sys/wrapping/wrap") {
			t.Errorf("NewTransit with a wrapping token from sys/wrapping/wrap: %v; want ErrVaultDenied naming its origin", err)
		}
	})
	logs.assertNotLogged(t, []byte(secretID), []byte(roleID), []byte(shared.RootToken))
}

// TestTransitAppRoleRelogin gives the role tokens that live seconds, so
// renewal reaches the max TTL and Transit must log in again by itself.
func TestTransitAppRoleRelogin(t *testing.T) {
	key := createKey(t, shared, "relogin")
	root := rootClient(t, shared)
	putPolicy(t, root, "tokenproxy-relogin", transitPolicy(key))
	roleID := appRole(t, root, "relogin", "tokenproxy-relogin", map[string]any{"token_ttl": "2s", "token_max_ttl": "4s"})
	var logs logBuffer
	tr := newTransit(t, appRoleConfig(shared, key, roleID, writeFile(t, "secret_id", newSecretID(t, root, "relogin")), false),
		vault.WithLogger(logs.logger()))
	store := newMemStore()
	mustLoad(t, tr, store)

	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(logs.String(), `"event":"vault_login"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no second re-login within 20s; log:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The first token has expired by now; a restart-like reload must work
	// with the token of the latest login.
	mustLoad(t, tr, store)
	if !strings.Contains(logs.String(), `"event":"vault_token_renewed"`) {
		t.Errorf("no renewal logged before re-login; log:\n%s", logs.String())
	}
}

func TestTransitDeniedWithoutDecrypt(t *testing.T) {
	key := createKey(t, shared, "no-decrypt")
	root := rootClient(t, shared)
	putPolicy(t, root, "tokenproxy-no-decrypt", transitPolicy(key, "decrypt"))
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"tokenproxy-no-decrypt"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := vault.TransitConfig{Address: shared.Addr, Key: key, Token: tok.Auth.ClientToken}
	_, err = vault.Load(context.Background(), newTransit(t, cfg), newMemStore())
	if !errors.Is(err, vault.ErrVaultDenied) {
		t.Fatalf("Load without decrypt: %v; want ErrVaultDenied", err)
	}
	want := `vault: permission denied on transit/decrypt/` + key + `: the token's policy must grant "update" on this path`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not contain %q", err, want)
	}
}

func TestTransitKeyMissing(t *testing.T) {
	_, err := vault.Load(context.Background(), newTransit(t, rootConfig(shared, "never-created")), newMemStore())
	want := "vault write -f transit/keys/never-created"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load with a missing key: %v; want a hint %q", err, want)
	}
}

func TestTransitBadToken(t *testing.T) {
	cfg := vault.TransitConfig{Address: shared.Addr, Token: "hvs.not-a-token"}
	_, err := vault.NewTransit(context.Background(), cfg)
	if !errors.Is(err, vault.ErrVaultDenied) || !strings.Contains(err.Error(), "invalid, expired or revoked") {
		t.Errorf("NewTransit with a bad token: %v; want ErrVaultDenied saying the token is invalid", err)
	}
}

// TestTransitSteadyStateMakesNoCalls proves the keys are used from memory:
// after Load, using the keyring never reaches Vault.
func TestTransitSteadyStateMakesNoCalls(t *testing.T) {
	key := createKey(t, shared, "steady")
	root := rootClient(t, shared)
	putPolicy(t, root, "tokenproxy-steady", transitPolicy(key))
	// A renewable token with a TTL, like production, so renewal is armed.
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"tokenproxy-steady"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var rt countingTransport
	cfg := vault.TransitConfig{Address: shared.Addr, Key: key, Token: tok.Auth.ClientToken}
	kr := mustLoad(t, newTransit(t, cfg, vault.WithHTTPTransport(&rt)), newMemStore())
	after := rt.n.Load()
	if after == 0 {
		t.Fatal("the counting transport saw no request: it is not in use")
	}

	for i := range 1000 {
		_, k := kr.Current(vault.PurposeToken)
		m := hmac.New(sha256.New, k)
		fmt.Fprintf(m, "customer%d@example.com", i)
		m.Sum(nil)
		if _, rk := kr.Current(vault.PurposeRecord); len(rk) != vault.DataKeyBytes {
			t.Fatal("record key missing")
		}
	}
	time.Sleep(500 * time.Millisecond) // let any background call show
	if n := rt.n.Load(); n != after {
		t.Errorf("Vault saw %d requests after Load, want 0", n-after)
	}
}

func TestTransitVaultKilledAfterLoad(t *testing.T) {
	srv := vaulttest.Start(t)
	key := createKey(t, srv, "killed")
	tr := newTransit(t, rootConfig(srv, key))
	kr := mustLoad(t, tr, newMemStore())
	_, before := kr.Current(vault.PurposeToken)

	srv.Kill()

	for range 100 {
		if _, k := kr.Current(vault.PurposeToken); !bytes.Equal(k, before) {
			t.Fatal("keyring changed after Vault died")
		}
		if _, err := kr.Key(vault.PurposeRecord, 1); err != nil {
			t.Fatalf("record key v1 after Vault died: %v", err)
		}
	}
	_, err := tr.Unwrap(context.Background(), []byte("vault:v1:AAAA"))
	if !errors.Is(err, vault.ErrVaultUnavailable) {
		t.Errorf("Unwrap with Vault dead: %v; want ErrVaultUnavailable", err)
	}
}

// TestTransitUnreachableAtStart checks that an unreachable Vault is named
// as such whatever the timeout. With a short one (keys.vault.timeout: 2s)
// the timeout ends during the api client's retry backoff, and the client
// returns the context's error alone: the message must still say what the
// attempts met, not only "context deadline exceeded".
func TestTransitUnreachableAtStart(t *testing.T) {
	closedPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close() // a closed loopback port refuses connections at once
		return "http://" + ln.Addr().String()
	}
	silentPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() }) // the kernel accepts; nothing answers
		return "http://" + ln.Addr().String()
	}
	for _, tc := range []struct {
		name    string
		addr    func(*testing.T) string
		timeout time.Duration
		want    []string // in the message, after "vault at ADDR: cannot reach: "
		wantIs  []error
	}{
		{"refused, default timeout", closedPort, 0, []string{"connection refused"}, nil},
		{"refused, 2s timeout", closedPort, 2 * time.Second,
			[]string{"connection refused", "gave up after 2s"}, []error{context.DeadlineExceeded, syscall.ECONNREFUSED}},
		{"no answer", silentPort, 500 * time.Millisecond,
			[]string{"no answer, timed out after 500ms"}, []error{context.DeadlineExceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.addr(t)
			_, err := vault.NewTransit(context.Background(), vault.TransitConfig{Address: addr, Token: "unused", Timeout: tc.timeout})
			if !errors.Is(err, vault.ErrVaultUnavailable) {
				t.Fatalf("NewTransit: %v; want ErrVaultUnavailable", err)
			}
			msg := err.Error()
			t.Log(msg)
			if prefix := "vault at " + addr + ": cannot reach: "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q; want it to start %q", msg, prefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q; want it to say %q", msg, w)
				}
			}
			if strings.Contains(msg, "context deadline exceeded") {
				t.Errorf("error %q names the context, not the cause", msg)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error %q does not wrap %v", msg, target)
				}
			}
		})
	}
}

func TestTransitTLS(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.WithTLS())
	if !strings.HasPrefix(srv.Addr, "https://") || srv.CACertFile == "" {
		t.Fatalf("TLS server at %s with CA %q", srv.Addr, srv.CACertFile)
	}
	key := createKey(t, srv, "tls")
	mustLoad(t, newTransit(t, rootConfig(srv, key)), newMemStore())

	cfg := rootConfig(srv, key)
	cfg.CACert = ""
	_, err := vault.NewTransit(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("NewTransit without the CA: %v; want a certificate error", err)
	}

	cfg = rootConfig(srv, key)
	cfg.TLSServerName = "vault.invalid"
	_, err = vault.NewTransit(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("NewTransit with a server name the certificate lacks: %v; want a certificate error", err)
	}
}

func TestTransitConfigErrors(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	for _, tc := range []struct {
		name string
		cfg  vault.TransitConfig
		want string
	}{
		{"no address", vault.TransitConfig{Token: "t"}, "Address is required"},
		{"bad address", vault.TransitConfig{Address: "vault:8200", Token: "t"}, "Address"},
		{"no credentials", vault.TransitConfig{Address: "https://v:8200"}, "no credentials"},
		{"token and file", vault.TransitConfig{Address: "https://v:8200", Token: "t", TokenFile: "f"}, "Token and TokenFile"},
		{"token and approle", vault.TransitConfig{Address: "https://v:8200", Token: "t", AppRole: &vault.AppRoleConfig{RoleID: "r", SecretIDFile: "f"}}, "AppRole and a token"},
		{"approle without role", vault.TransitConfig{Address: "https://v:8200", AppRole: &vault.AppRoleConfig{SecretIDFile: "f"}}, "RoleID"},
		{"approle without secret", vault.TransitConfig{Address: "https://v:8200", AppRole: &vault.AppRoleConfig{RoleID: "r"}}, "SecretIDFile"},
		{"ca on http", vault.TransitConfig{Address: "http://v:8200", Token: "t", CACert: "ca.pem"}, "CACert"},
		{"missing ca", vault.TransitConfig{Address: "https://v:8200", Token: "t", CACert: "/nonexistent/ca.pem"}, "CACert"},
		{"missing token file", vault.TransitConfig{Address: "https://v:8200", TokenFile: "/nonexistent/token"}, "TokenFile"},
		{"negative timeout", vault.TransitConfig{Address: "https://v:8200", Token: "t", Timeout: -time.Second}, "Timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vault.NewTransit(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewTransit: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestTransitForeignKEK: keys wrapped by one transit key, unwrapped
// through another (a node configured with its own key), are refused with
// ErrForeignKEK, naming the fix; so are keys of the local keyring.
func TestTransitForeignKEK(t *testing.T) {
	a, b := createKey(t, shared, "foreign-a"), createKey(t, shared, "foreign-b")
	store := newMemStore()
	mustLoad(t, newTransit(t, rootConfig(shared, a)), store)
	_, err := vault.Load(context.Background(), newTransit(t, rootConfig(shared, b)), store)
	if !errors.Is(err, vault.ErrForeignKEK) || !strings.Contains(err.Error(), "every node needs the same Vault transit key") {
		t.Fatalf("Load through another transit key = %v", err)
	}
	local := newMemStore()
	mustLoad(t, openLocal(t, filepath.Join(t.TempDir(), "k.json"), true), local)
	if _, err := vault.Load(context.Background(), newTransit(t, rootConfig(shared, a)), local); !errors.Is(err, vault.ErrForeignKEK) {
		t.Fatalf("Load of local-keyring keys through transit = %v", err)
	}
}
