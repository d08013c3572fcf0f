package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/vault/api"
)

// appRoleLogin holds what a re-login needs. The secret_id stays in memory
// only: a wrapped one cannot be read from its file a second time.
type appRoleLogin struct {
	mount    string
	roleID   string
	secretID string
}

// login authenticates the client and returns the secret whose lifetime the
// renewal goroutine watches.
func (t *Transit) login(ctx context.Context, cfg TransitConfig) (*api.Secret, error) {
	if cfg.AppRole == nil {
		return t.loginToken(ctx, cfg)
	}
	ar, err := t.newAppRoleLogin(ctx, *cfg.AppRole)
	if err != nil {
		return nil, err
	}
	t.approle = ar
	return t.loginAppRole(ctx)
}

// loginToken checks the configured token with lookup-self, so a bad token
// fails at start rather than at the first unwrap.
func (t *Transit) loginToken(ctx context.Context, cfg TransitConfig) (*api.Secret, error) {
	token, err := configuredToken(cfg)
	if err != nil {
		return nil, err
	}
	t.client.SetToken(token)
	path := "auth/token/lookup-self"
	rctx, cancel := t.requestContext(ctx)
	defer cancel()
	s, err := t.client.Logical().ReadWithContext(rctx, path)
	if err != nil {
		err = t.explain(rctx, vaultCall{path: path, capability: "read"}, err)
		if errors.Is(err, ErrVaultDenied) {
			return nil, newVaultError(ErrVaultDenied, err, "vault: the token was refused by %s: it is invalid, expired or revoked", path)
		}
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("vault: %s: empty answer", path)
	}
	ttl, _ := intField(s.Data["ttl"])
	renewable, _ := s.Data["renewable"].(bool)
	t.log.Info("logged in to vault", "event", "vault_login", "vault_addr", t.addr, "method", "token",
		"ttl_seconds", ttl, "renewable", renewable, "policies", s.Data["policies"])
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: token, Renewable: renewable, LeaseDuration: ttl}}, nil
}

func configuredToken(cfg TransitConfig) (string, error) {
	switch {
	case cfg.Token != "":
		return cfg.Token, nil
	case cfg.TokenFile != "":
		return readSecretFile(cfg.TokenFile, "TokenFile")
	}
	return os.Getenv(api.EnvVaultToken), nil
}

// readSecretFile reads a credential file. Errors name the file and the
// field, never the content.
func readSecretFile(path, field string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vault transit config: %s: %w", field, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("vault transit config: %s %s is empty", field, path)
	}
	return s, nil
}

func (t *Transit) newAppRoleLogin(ctx context.Context, cfg AppRoleConfig) (*appRoleLogin, error) {
	ar := &appRoleLogin{mount: cfg.Mount, roleID: cfg.RoleID}
	var err error
	if cfg.RoleIDFile != "" {
		if ar.roleID, err = readSecretFile(cfg.RoleIDFile, "AppRole.RoleIDFile"); err != nil {
			return nil, err
		}
	}
	if ar.secretID, err = readSecretFile(cfg.SecretIDFile, "AppRole.SecretIDFile"); err != nil {
		return nil, err
	}
	if cfg.SecretIDWrapped {
		if ar.secretID, err = t.unwrapSecretID(ctx, ar.secretID, cfg); err != nil {
			return nil, err
		}
	}
	return ar, nil
}

// unwrapSecretID exchanges a response-wrapping token for the secret_id it
// wraps. It first checks where the wrapped response came from, as Vault's
// guidance asks, so a token substituted by someone else (wrapping, say, a
// secret of their choosing) is refused.
func (t *Transit) unwrapSecretID(ctx context.Context, wrapToken string, cfg AppRoleConfig) (string, error) {
	c, err := t.client.CloneWithHeaders()
	if err != nil {
		return "", fmt.Errorf("vault client: %w", err)
	}
	c.ClearToken()
	ctx, cancel := t.requestContext(ctx)
	defer cancel()
	if err := t.checkWrapOrigin(ctx, c, wrapToken, cfg); err != nil {
		return "", err
	}
	c.SetToken(wrapToken)
	path := "sys/wrapping/unwrap"
	s, err := c.Logical().WriteWithContext(ctx, path, nil)
	if err != nil {
		return "", t.wrapTokenError(ctx, path, cfg.SecretIDFile, err)
	}
	return stringField(s, path, "secret_id")
}

// checkWrapOrigin looks the wrapping token up without using it (the
// lookup needs no authentication and does not consume the token).
func (t *Transit) checkWrapOrigin(ctx context.Context, c *api.Client, wrapToken string, cfg AppRoleConfig) error {
	path := "sys/wrapping/lookup"
	s, err := c.Logical().WriteWithContext(ctx, path, map[string]any{"token": wrapToken})
	if err != nil {
		return t.wrapTokenError(ctx, path, cfg.SecretIDFile, err)
	}
	var origin string
	if s != nil {
		origin, _ = s.Data["creation_path"].(string)
	}
	if origin == "" {
		return wrapTokenRefused(cfg.SecretIDFile, errors.New("no such wrapping token"))
	}
	prefix := "auth/" + cfg.Mount + "/role/"
	if !strings.HasPrefix(origin, prefix) || !strings.HasSuffix(origin, "/secret-id") {
		return newVaultError(ErrVaultDenied, errors.New(origin),
			"vault: the wrapping token in %s was created by %s, not by %s<role>/secret-id: refusing it", cfg.SecretIDFile, origin, prefix)
	}
	return nil
}

// wrapTokenError explains a refused wrapping token: they work once and
// expire, so a restart needs a freshly wrapped secret_id.
func (t *Transit) wrapTokenError(ctx context.Context, path, file string, err error) error {
	err = t.explain(ctx, vaultCall{path: path, login: true}, err)
	if errors.Is(err, ErrVaultUnavailable) {
		return err
	}
	return wrapTokenRefused(file, err)
}

func wrapTokenRefused(file string, err error) error {
	return newVaultError(ErrVaultDenied, err,
		"vault: the wrapping token in %s was refused (it works once and expires; write a freshly wrapped secret_id there): %v", file, err)
}

// loginAppRole logs in with the role_id and secret_id and makes the new
// token the client's. It sends no token: a clone without one is used, so
// an expired token (at re-login) or VAULT_TOKEN is never sent along.
func (t *Transit) loginAppRole(ctx context.Context) (*api.Secret, error) {
	c, err := t.client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearToken()
	path := "auth/" + t.approle.mount + "/login"
	ctx, cancel := t.requestContext(ctx)
	defer cancel()
	s, err := c.Logical().WriteWithContext(ctx, path, map[string]any{
		"role_id": t.approle.roleID, "secret_id": t.approle.secretID,
	})
	if err != nil {
		return nil, t.explain(ctx, vaultCall{path: path, login: true}, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault: %s: answer has no token", path)
	}
	t.client.SetToken(s.Auth.ClientToken)
	t.log.Info("logged in to vault", "event", "vault_login", "vault_addr", t.addr, "method", "approle",
		"ttl_seconds", s.Auth.LeaseDuration, "renewable", s.Auth.Renewable, "policies", s.Auth.Policies)
	return s, nil
}
