package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadKeyFile(t *testing.T) {
	rsaK, edK := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("not a key at all, but long enough to be base64 encoded in a block")
	raw := filepath.Join(t.TempDir(), "raw.key")
	if err := os.WriteFile(raw, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    crypto.PublicKey
		wantErr string
	}{
		{"PKCS#1 RSA", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaK)), rsaK.Public(), ""},
		{"PKCS#8 RSA", writePEM(t, "PRIVATE KEY", pkcs8(t, rsaK)), rsaK.Public(), ""},
		{"PKCS#8 Ed25519", writePEM(t, "PRIVATE KEY", pkcs8(t, edK)), edK.Public(), ""},
		{"RSA 1024 refused", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), nil, "1024 bits, want at least 2048"},
		{"ECDSA refused", writePEM(t, "PRIVATE KEY", pkcs8(t, ec)), nil, "unsupported key type *ecdsa.PrivateKey"},
		{"public key", writePEM(t, "PUBLIC KEY", garbage), nil, `PEM block "PUBLIC KEY"`},
		{"broken key", writePEM(t, "PRIVATE KEY", garbage), nil, "parsing PRIVATE KEY"},
		{"raw bytes", raw, nil, "no PEM block"},
		{"missing file", filepath.Join(t.TempDir(), "missing.pem"), nil, "no such file"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := LoadKeyFile(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, tt.path, tt.wantErr)
				}
				for _, secret := range []string{string(garbage), base64.StdEncoding.EncodeToString(garbage)[:20]} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error shows the file's content: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Error("loaded key differs")
			}
		})
	}
}

func TestSignFields(t *testing.T) {
	rsaK, edK := testKeys(t)
	msg := testMessage("support@company.example")
	for _, tt := range []struct {
		key crypto.Signer
		alg string
	}{{rsaK, "rsa-sha256"}, {edK, "ed25519-sha256"}} {
		t.Run(tt.alg, func(t *testing.T) {
			out := signed(t, tt.key, "company.example", "tp1", msg)
			sig, rest, ok := rawheader.Next(out)
			if !ok || !bytes.Equal(rest, msg) {
				t.Fatalf("Sign did not prepend one field to the unchanged message:\n%s", out)
			}
			tags := parseTags(field{raw: sig}.value())
			want := map[string]string{"a": tt.alg, "c": "relaxed/relaxed", "d": "company.example", "s": "tp1", "v": "1"}
			for k, v := range want {
				if stripSpace(tags[k]) != v {
					t.Errorf("%s=%q, want %q", k, tags[k], v)
				}
			}
			h := strings.ToLower(stripSpace(tags["h"]))
			if !strings.HasPrefix(h, "from:from:") {
				t.Errorf("h=%s, want From oversigned first", h)
			}
			if !strings.HasPrefix(string(sig), "DKIM-Signature: ") || !strings.HasSuffix(string(sig), "\r\n") {
				t.Errorf("field = %q", sig)
			}
		})
	}
}

func TestSignatureMatchesSign(t *testing.T) {
	_, edK := testKeys(t)
	msg := testMessage("support@company.example")
	cfg := SignerConfig{Domain: "company.example", Selector: "tp1", Key: edK}
	sig, err := Signature(context.Background(), cfg, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	z := dnstest.Start(t)
	publishKey(t, z, "company.example", "tp1", edK.Public())
	v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "h.example"}, append([]byte(sig), msg...))
	if len(v.DKIM) != 1 || v.DKIM[0].Result != ResultPass {
		t.Errorf("Signature + message: DKIM %+v", v.DKIM)
	}
}

// countingSigner counts the signatures it makes.
type countingSigner struct {
	crypto.Signer
	n atomic.Int32
}

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, d, o)
}

// TestSignNeverSignsPartial: a message that cannot be read to its end, or a
// context that ends first, is never signed.
func TestSignNeverSignsPartial(t *testing.T) {
	rsaK, _ := testKeys(t)
	msg := testMessage("support@company.example")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		r    io.Reader
	}{
		{"read error in the body", context.Background(), io.MultiReader(bytes.NewReader(msg[:len(msg)-5]), iotest.ErrReader(errors.New("reset")))},
		{"read error in the header", context.Background(), io.MultiReader(bytes.NewReader(msg[:20]), iotest.ErrReader(errors.New("reset")))},
		{"context ended", cancelled, bytes.NewReader(msg)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := &countingSigner{Signer: rsaK}
			var out bytes.Buffer
			err := Sign(tt.ctx, SignerConfig{Domain: "company.example", Selector: "s", Key: key}, tt.r, &out)
			if err == nil || out.Len() != 0 || key.n.Load() != 0 {
				t.Errorf("err %v, %d bytes written, %d signatures; want an error, nothing written, no signature", err, out.Len(), key.n.Load())
			}
		})
	}
}

func TestSignConfigErrors(t *testing.T) {
	rsaK, _ := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name string
		cfg  SignerConfig
		want string
	}{
		{"no domain", SignerConfig{Selector: "s", Key: rsaK}, "domain and selector are required"},
		{"no selector", SignerConfig{Domain: "d.example", Key: rsaK}, "domain and selector are required"},
		{"no key", SignerConfig{Domain: "d.example", Selector: "s"}, "no key"},
		{"small RSA", SignerConfig{Domain: "d.example", Selector: "s", Key: small}, "want at least 2048"},
		{"ECDSA", SignerConfig{Domain: "d.example", Selector: "s", Key: ec}, "unsupported key type"},
		{"From not signed", SignerConfig{Domain: "d.example", Selector: "s", Key: rsaK, HeaderKeys: []string{"Subject"}}, "must include From"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Sign(context.Background(), tt.cfg, bytes.NewReader(testMessage("a@d.example")), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
