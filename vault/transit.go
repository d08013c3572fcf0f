package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// Transit is a KEK held by HashiCorp Vault's transit engine: the key never
// leaves Vault, which wraps and unwraps data keys on request. It is safe for
// concurrent use. Close stops its token renewal.
type Transit struct {
	client  *api.Client
	log     *slog.Logger
	addr    string
	mount   string
	key     string
	timeout time.Duration
	approle *appRoleLogin // nil for token auth
	metrics *TransitMetrics

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ KEK = (*Transit)(nil)

// NewTransit validates cfg, connects to Vault, logs in and starts token
// renewal. It does not check that the transit key exists: the first
// NewDataKey or Unwrap does, with an error that says how to create it.
func NewTransit(ctx context.Context, cfg TransitConfig, opts ...TransitOption) (*Transit, error) {
	var o transitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := newAPIClient(cfg, o.transport)
	if err != nil {
		return nil, err
	}
	t := &Transit{
		client: client, log: o.logger, addr: cfg.Address,
		mount: cfg.Mount, key: cfg.Key, timeout: cfg.Timeout, metrics: o.metrics,
	}
	if !strings.HasPrefix(cfg.Address, "https://") && !isLoopback(cfg.Address) {
		t.log.Warn("vault address is not https: tokens and data keys cross the network in clear",
			"event", "vault_insecure_address", "vault_addr", t.addr)
	}
	secret, err := t.login(ctx, cfg)
	t.metrics.loggedIn(secret, err)
	if err != nil {
		return nil, err
	}
	t.startRenewal(secret)
	return t, nil
}

// Client returns the logged-in Vault client, whose token the renewal keeps
// valid: other transit keys of the same login (the DKIM signing key) use
// it instead of a second login.
func (t *Transit) Client() *api.Client { return t.client }

// path names a transit endpoint for this key, e.g. transit/decrypt/tokenproxy.
func (t *Transit) path(endpoint string) string {
	return t.mount + "/" + endpoint + "/" + t.key
}

// write sends one update request, bounded by the configured timeout.
func (t *Transit) write(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	ctx, cancel := t.requestContext(ctx)
	defer cancel()
	s, err := t.client.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, t.explain(ctx, vaultCall{path: path, capability: "update"}, err)
	}
	// s is nil for a 204 (rotate on some Vault versions): callers that need
	// data find none through stringField.
	return s, nil
}

// NewDataKey implements KEK. Vault generates the key and returns only its
// wrapped form (datakey/wrapped), which is then decrypted like at every
// start: the policy needs no datakey/plaintext grant, and the first start
// proves the decrypt permission a restart depends on.
func (t *Transit) NewDataKey(ctx context.Context) ([]byte, []byte, error) {
	path := t.path("datakey/wrapped")
	s, err := t.write(ctx, path, map[string]any{"bits": DataKeyBytes * 8})
	if err != nil {
		return nil, nil, err
	}
	wrapped, err := stringField(s, path, "ciphertext")
	if err != nil {
		return nil, nil, err
	}
	plain, err := t.Unwrap(ctx, []byte(wrapped))
	if err != nil {
		return nil, nil, err
	}
	return plain, []byte(wrapped), nil
}

// Unwrap implements KEK.
func (t *Transit) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	if err := checkTransitCiphertext(wrapped); err != nil {
		return nil, err
	}
	path := t.path("decrypt")
	s, err := t.write(ctx, path, map[string]any{"ciphertext": string(wrapped)})
	if err != nil {
		return nil, err
	}
	b64, err := stringField(s, path, "plaintext")
	if err != nil {
		return nil, err
	}
	plain, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("vault: %s: plaintext is not base64", path)
	}
	return plain, nil
}

// checkTransitCiphertext refuses a wrapped key of another KEK before
// sending it to Vault, with a hint at the usual cause.
func checkTransitCiphertext(wrapped []byte) error {
	if !strings.HasPrefix(string(wrapped), "vault:v") {
		return fmt.Errorf("vault: %w: wrapped key is not a Vault transit ciphertext (was the map created with the local keyring?)", ErrForeignKEK)
	}
	return nil
}

// Rotate implements KEK.
func (t *Transit) Rotate(ctx context.Context) error {
	_, err := t.write(ctx, t.mount+"/keys/"+t.key+"/rotate", nil)
	return err
}

// Rewrap implements KEK. Vault decrypts and re-encrypts inside itself, so
// the plaintext never crosses the network.
func (t *Transit) Rewrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	if err := checkTransitCiphertext(wrapped); err != nil {
		return nil, err
	}
	path := t.path("rewrap")
	s, err := t.write(ctx, path, map[string]any{"ciphertext": string(wrapped)})
	if err != nil {
		return nil, err
	}
	c, err := stringField(s, path, "ciphertext")
	if err != nil {
		return nil, err
	}
	return []byte(c), nil
}

// Status implements KEK.
func (t *Transit) Status(ctx context.Context) (Status, error) {
	ctx, cancel := t.requestContext(ctx)
	defer cancel()
	path := t.path("keys")
	s, err := t.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return Status{}, t.explain(ctx, vaultCall{path: path, capability: "read"}, err)
	}
	if s == nil {
		return Status{}, fmt.Errorf("vault: transit key %q not found on mount %q: create it with `vault write -f %s/keys/%s`", t.key, t.mount, t.mount, t.key)
	}
	st := Status{Provider: "vault-transit", Location: t.addr + " " + path}
	st.CurrentVersion, _ = intField(s.Data["latest_version"])
	st.MinDecrypt, _ = intField(s.Data["min_decryption_version"])
	return st, nil
}

// Close implements KEK: it stops token renewal. The token is not revoked,
// since a token given by the operator may be shared with other tools.
func (t *Transit) Close() error {
	t.closeOnce.Do(func() {
		t.stop()
		<-t.done
	})
	return nil
}

func stringField(s *api.Secret, path, name string) (string, error) {
	var v string
	if s != nil {
		v, _ = s.Data[name].(string)
	}
	if v == "" {
		return "", fmt.Errorf("vault: %s: answer has no %s", path, name)
	}
	return v, nil
}

// intField reads a number from a Vault answer, which the api client decodes
// as json.Number.
func intField(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case float64:
		return int(n), true
	case int:
		return n, true
	}
	return 0, false
}
