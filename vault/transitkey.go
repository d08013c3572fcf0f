package vault

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// transitKey is a signing key of Vault's transit engine. Reading its
// description and signing with it are the same two calls whatever the
// signature is for (DKIM, audit checkpoints), so they are written once,
// here; each signer adds its own checks and error wording.
type transitKey struct {
	client *api.Client
	mount  string
	name   string
}

func (k transitKey) keyPath() string  { return k.mount + "/keys/" + k.name }
func (k transitKey) signPath() string { return k.mount + "/sign/" + k.name }

// describe reads GET <mount>/keys/<name>. A key that does not exist is a
// nil map and no error (Vault answers 404, which the client reads as no
// secret).
func (k transitKey) describe(ctx context.Context) (map[string]any, error) {
	sec, err := k.client.Logical().ReadWithContext(ctx, k.keyPath())
	if err != nil || sec == nil {
		return nil, err
	}
	return sec.Data, nil
}

// sign posts input to POST <mount>/sign/<name>, with params added to the
// request. version pins key_version; 0 signs with the latest version. It
// returns Vault's signature field ("vault:v<N>:<base64>"), "" when the
// answer has none.
func (k transitKey) sign(ctx context.Context, input []byte, version int, params map[string]any) (string, error) {
	body := map[string]any{"input": base64.StdEncoding.EncodeToString(input)}
	if version > 0 {
		body["key_version"] = version
	}
	for name, v := range params {
		body[name] = v
	}
	sec, err := k.client.Logical().WriteWithContext(ctx, k.signPath(), body)
	if err != nil || sec == nil {
		return "", err
	}
	sig, _ := sec.Data["signature"].(string)
	return sig, nil
}

// transitSignature is a signature as transit writes it:
// "vault:v<version>:<b64>", raw being b64 decoded.
type transitSignature struct {
	version int
	b64     string
	raw     []byte
}

// parseTransitSignature splits a transit signature; ok is false unless it
// has the form above with a version of at least 1 and valid base64.
func parseTransitSignature(s string) (sig transitSignature, ok bool) {
	rest, ok := strings.CutPrefix(s, "vault:v")
	version, b64, ok2 := strings.Cut(rest, ":")
	n, err := strconv.Atoi(version)
	raw, derr := base64.StdEncoding.DecodeString(b64)
	if !ok || !ok2 || err != nil || n < 1 || derr != nil {
		return transitSignature{}, false
	}
	return transitSignature{version: n, b64: b64, raw: raw}, true
}
