package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

var (
	// ErrVaultUnavailable reports that Vault could not be reached or
	// answered with a server error (5xx, 429). It is temporary: the caller
	// fails closed (451) and may retry later.
	ErrVaultUnavailable = errors.New("vault unavailable")
	// ErrVaultDenied reports that Vault refused the credentials or the
	// token's policy lacks a capability (403). Retrying does not help; an
	// operator must fix the policy or the credentials.
	ErrVaultDenied = errors.New("vault permission denied")
)

// vaultError carries a message an operator can act on, an optional
// sentinel for errors.Is, and the underlying error for errors.As, without
// repeating the api client's multi-line error text.
type vaultError struct {
	msg   string
	kind  error // ErrVaultUnavailable, ErrVaultDenied or nil
	cause error
}

func (e *vaultError) Error() string { return e.msg }

func (e *vaultError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

func newVaultError(kind, cause error, format string, args ...any) error {
	return &vaultError{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// vaultCall names one request for error messages: the path, and the policy
// capability it needs (https://developer.hashicorp.com/vault/docs/concepts/policies#capabilities).
type vaultCall struct {
	path       string
	capability string // "update" for writes, "read" for reads
	login      bool   // a login: 400 and 403 mean rejected credentials
}

// explain turns an error from the api client into one an operator can act
// on. Vault's own error strings are kept: they never carry key material.
func (t *Transit) explain(ctx context.Context, c vaultCall, err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return t.transportError(ctx, err)
	}
	switch {
	case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
		return newVaultError(ErrVaultUnavailable, err, "vault at %s: %s answered %d: %s", t.addr, c.path, re.StatusCode, vaultErrors(re))
	case c.login && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusBadRequest):
		return newVaultError(ErrVaultDenied, err, "vault: %s refused the credentials: %s", c.path, vaultErrors(re))
	case re.StatusCode == http.StatusForbidden:
		return newVaultError(ErrVaultDenied, err, "vault: permission denied on %s: the token's policy must grant %q on this path", c.path, c.capability)
	case isKeyMissing(re):
		return newVaultError(nil, err, "vault: transit key %q not found on mount %q: create it with `vault write -f %s/keys/%s`", t.key, t.mount, t.mount, t.key)
	case isForeignCiphertext(re):
		return newVaultError(ErrForeignKEK, err, "vault: %v: transit key %q cannot decrypt them (%s answered %d: %s)",
			ErrForeignKEK, t.key, c.path, re.StatusCode, vaultErrors(re))
	case re.StatusCode == http.StatusNotFound:
		return newVaultError(nil, err, "vault: nothing answers at %s: is the transit engine mounted at %s/ (`vault secrets enable -path=%s transit`)?", c.path, t.mount, t.mount)
	}
	return newVaultError(nil, err, "vault: %s answered %d: %s", c.path, re.StatusCode, vaultErrors(re))
}

// transportError covers failures before Vault answered: network, TLS and
// timeouts. A certificate error is configuration, not an outage, so it does
// not carry ErrVaultUnavailable. ctx is the request's (requestContext).
func (t *Transit) transportError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return t.timeoutError(ctx, err)
	}
	cause := withoutURL(err)
	if isCertError(err) {
		return newVaultError(nil, err, "vault at %s: TLS certificate not trusted (set CACert to the CA that signed Vault's certificate, or TLSServerName to a name it holds): %v", t.addr, cause)
	}
	return newVaultError(ErrVaultUnavailable, err, "vault at %s: cannot reach: %v", t.addr, cause)
}

// timeoutError names what a request met before its deadline: the last
// attempt's failure (connection refused, reset) when an attempt ended
// before it, else the wait itself.
func (t *Transit) timeoutError(ctx context.Context, err error) error {
	after, last := requestAttempts(ctx)
	if after == 0 {
		after = t.timeout
	}
	after = after.Round(100 * time.Millisecond)
	if last == nil {
		return newVaultError(ErrVaultUnavailable, err, "vault at %s: cannot reach: no answer, timed out after %s", t.addr, after)
	}
	return newVaultError(ErrVaultUnavailable, errors.Join(last, err),
		"vault at %s: cannot reach: %v (gave up after %s)", t.addr, withoutURL(last), after)
}

// withoutURL drops the method and URL of an *url.Error: the message names
// the address, and the path is the caller's to give.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func isCertError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// isKeyMissing recognizes transit's answer for an unknown key name: 400
// "encryption key not found" (datakey, decrypt, rewrap) or "key not found"
// (rotate).
func isKeyMissing(re *api.ResponseError) bool {
	if re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "key not found") {
			return true
		}
	}
	return false
}

// isForeignCiphertext recognizes transit's answer for a ciphertext that
// another key made: 400 "cipher: message authentication failed", or
// "invalid key version" when it names a version this key never had.
func isForeignCiphertext(re *api.ResponseError) bool {
	if re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "message authentication failed") || strings.Contains(e, "invalid key version") {
			return true
		}
	}
	return false
}

func vaultErrors(re *api.ResponseError) string {
	if len(re.Errors) == 0 {
		return http.StatusText(re.StatusCode)
	}
	return strings.Join(re.Errors, "; ")
}
