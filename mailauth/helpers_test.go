package mailauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	edKey    ed25519.PrivateKey
)

// testKeys returns an RSA-2048 and an Ed25519 key shared by the package's
// tests (RSA generation is slow).
func testKeys(t testing.TB) (*rsa.PrivateKey, ed25519.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return rsaKey, edKey
}

// testMessage returns a small message From from, with CRLF line ends.
func testMessage(from string) []byte {
	return []byte(strings.Join([]string{
		"From: Jane Doe <" + from + ">",
		"To: support@company.example",
		"Subject: order 1234",
		"Date: Mon, 02 Jun 2025 10:00:00 +0000",
		"Message-ID: <order-1234@mail.example>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"",
		"Hello,",
		"",
		"where is my order?  Trailing spaces here   ",
		"",
		"",
	}, "\r\n"))
}

// signed signs msg with our Sign.
func signed(t *testing.T, key crypto.Signer, domain, selector string, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	cfg := SignerConfig{Domain: domain, Selector: selector, Key: key}
	if err := Sign(context.Background(), cfg, bytes.NewReader(msg), &out); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return out.Bytes()
}

// publishKey serves the DKIM record of pub at selector._domainkey.domain.
func publishKey(t testing.TB, z *dnstest.Server, domain, selector string, pub crypto.PublicKey) {
	t.Helper()
	rec := dkimRecord(DKIMKey{Domain: domain, Selector: selector, Public: pub})
	if rec.Value == "" {
		t.Fatalf("no DKIM record: %s", rec.Why)
	}
	z.TXT(rec.Name, rec.Value)
}

// verify runs Verify with a resolver on z.
func verify(t *testing.T, z *dnstest.Server, in VerifyInput, msg []byte) *Verdicts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Verify(ctx, NewResolver(z.Addr, 2*time.Second), in, bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return v
}

// testTimeout is the per-look-up timeout of resolvers pointed at the
// blackhole: short, so the timeout tests stay fast.
const testTimeout = 300 * time.Millisecond
