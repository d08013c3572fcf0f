package vault

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/hashicorp/vault/api"
)

// Re-login backoff bounds: quick enough to recover from a Vault restart,
// slow enough not to flood Vault's audit log while it is down.
const (
	reloginMinWait = time.Second
	reloginMaxWait = 5 * time.Minute
)

// startRenewal keeps the login token alive in the background until Close.
// Renewal is the only Vault traffic Transit makes on its own: the data keys
// are already in memory, so mail never waits for it.
func (t *Transit) startRenewal(secret *api.Secret) {
	ctx, stop := context.WithCancel(context.Background())
	t.stop = stop
	t.done = make(chan struct{})
	go t.renewLoop(ctx, secret)
}

func (t *Transit) renewLoop(ctx context.Context, secret *api.Secret) {
	defer close(t.done)
	defer t.recoverPanic("vault token renewal")
	for secret != nil && t.watch(ctx, secret) {
		secret = t.relogin(ctx)
	}
}

// recoverPanic keeps a bug in renewal from taking the proxy down: mail
// runs on the keys already in memory.
func (t *Transit) recoverPanic(what string) {
	if r := recover(); r != nil {
		t.log.Error(what+" stopped by a panic", "event", "vault_renewal_panic",
			"panic", r, "stack", string(debug.Stack()))
	}
}

// watch renews the token until its lease can no longer be extended. It
// reports whether a new login is wanted.
func (t *Transit) watch(ctx context.Context, secret *api.Secret) bool {
	auth := secret.Auth
	if auth.LeaseDuration == 0 {
		t.log.Debug("vault token does not expire; nothing to renew", "event", "vault_token_no_expiry")
		return false
	}
	if !auth.Renewable {
		t.log.Debug("vault token is not renewable; it is used until shortly before it expires",
			"event", "vault_token_not_renewable", "ttl_seconds", auth.LeaseDuration)
	}
	w, err := t.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		t.log.Error("vault token renewal not started", "event", "vault_renewal_failed", "error", err)
		return false
	}
	go func() {
		defer t.recoverPanic("vault lifetime watcher")
		w.Start()
	}()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case r := <-w.RenewCh():
			t.log.Debug("vault token renewed", "event", "vault_token_renewed", "ttl_seconds", renewedTTL(r))
			t.metrics.renewed(r)
		case err := <-w.DoneCh():
			return t.leaseEnded(err)
		}
	}
}

func renewedTTL(r *api.RenewOutput) int {
	if r == nil || r.Secret == nil || r.Secret.Auth == nil {
		return 0
	}
	return r.Secret.Auth.LeaseDuration
}

// leaseEnded decides what follows the end of a token's renewable life:
// AppRole logs in again; a configured token cannot be replaced from here.
func (t *Transit) leaseEnded(err error) bool {
	if t.approle != nil {
		t.log.Info("vault token lease is ending; logging in again", "event", "vault_token_lease_end", "error", err)
		return true
	}
	t.log.Warn("vault token can no longer be renewed and will expire: mail keeps flowing on the loaded keys, but key commands and restarts need a new token",
		"event", "vault_token_expiring", "error", err)
	return false
}

// relogin logs in with AppRole until it succeeds or Close is called.
func (t *Transit) relogin(ctx context.Context) *api.Secret {
	wait := reloginMinWait
	for {
		s, err := t.loginAppRole(ctx)
		if ctx.Err() == nil {
			t.metrics.loggedIn(s, err)
		}
		if err == nil {
			return s
		}
		if ctx.Err() != nil {
			return nil
		}
		t.log.Error("vault re-login failed", "event", "vault_relogin_failed", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, reloginMaxWait)
	}
}
