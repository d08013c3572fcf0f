package mailauth

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

// These tests check our DKIM against implementations that share no code
// with go-msgauth: Mail::DKIM (rsa-sha256; bookworm's 1.20230212 predates
// its Ed25519 support, added in 1.20230630) and dkimpy (rsa-sha256 and
// ed25519-sha256), both from Debian, both resolving keys through the test
// DNS server on loopback.

func dnsPort(t *testing.T, z *dnstest.Server) string {
	t.Helper()
	_, port, err := net.SplitHostPort(z.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestMailDKIMVerifiesOurSignature(t *testing.T) {
	requireTools(t)
	rsaK, _ := testKeys(t)
	z := dnstest.Start(t)
	publishKey(t, z, "company.example", "tp1", rsaK.Public())
	m := signed(t, rsaK, "company.example", "tp1", testMessage("support@company.example"))

	out, err := runTool(t, m, perl, "dkim-verify.pl", dnsPort(t, z))
	if err != nil || !strings.Contains(out, "pass rsa-sha256 d=company.example s=tp1") {
		t.Fatalf("Mail::DKIM does not verify our signature: %v\n%s\n%s", err, out, m)
	}
	t.Logf("Mail::DKIM:\n%s", out)
	// And it is really checking: a changed body fails.
	tampered := bytes.Replace(m, []byte("where is"), []byte("where was"), 1)
	if out, err := runTool(t, tampered, perl, "dkim-verify.pl", dnsPort(t, z)); err == nil || !strings.Contains(out, "fail rsa-sha256") {
		t.Errorf("Mail::DKIM passed a changed body: %v\n%s", err, out)
	}
}

func TestWeVerifyMailDKIMSignature(t *testing.T) {
	requireTools(t)
	rsaK, _ := testKeys(t)
	z := dnstest.Start(t)
	publishKey(t, z, "customer.example", "mdk", rsaK.Public())
	keyFile := writeKeyFile(t, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaK)}))

	m, err := runTool(t, testMessage("jane@customer.example"), perl, "dkim-sign.pl", keyFile, "customer.example", "mdk")
	if err != nil {
		t.Fatal(err)
	}
	assertOurVerifyPasses(t, z, []byte(m), "customer.example", "mdk", "rsa-sha256")
}

func TestDkimpyInterop(t *testing.T) {
	requireTools(t)
	rsaK, edK := testKeys(t)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaK)})
	edSeed := []byte(base64.StdEncoding.EncodeToString(edK.Seed())) // dkimpy's Ed25519 key format
	tests := []struct {
		alg     string
		key     crypto.Signer
		keyFile []byte
	}{
		{"rsa-sha256", rsaK, rsaPEM},
		{"ed25519-sha256", edK, edSeed},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			z := dnstest.Start(t)
			publishKey(t, z, "company.example", "py", tt.key.Public())

			ours := signed(t, tt.key, "company.example", "py", testMessage("support@company.example"))
			if out, err := runTool(t, ours, python3, "dkimpy.py", "verify", dnsPort(t, z)); err != nil || !strings.HasPrefix(out, "pass a="+tt.alg) {
				t.Errorf("dkimpy does not verify our %s signature: %v\n%s", tt.alg, err, out)
			}

			theirs, err := runTool(t, testMessage("support@company.example"), python3, "dkimpy.py", "sign", tt.alg, writeKeyFile(t, tt.keyFile), "company.example", "py")
			if err != nil {
				t.Fatal(err)
			}
			assertOurVerifyPasses(t, z, []byte(theirs), "company.example", "py", tt.alg)
		})
	}
}

func writeKeyFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertOurVerifyPasses(t *testing.T, z *dnstest.Server, m []byte, domain, selector, alg string) {
	t.Helper()
	v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.example", MailFrom: "bounce@" + domain}, m)
	if len(v.DKIM) != 1 {
		t.Fatalf("DKIM verdicts = %+v\n%s", v.DKIM, m)
	}
	d := v.DKIM[0]
	if d.Result != ResultPass || d.Domain != domain || d.Selector != selector || d.Algorithm != alg {
		t.Errorf("our verifier: %+v, want pass %s d=%s s=%s\n%s", d, alg, domain, selector, m)
	}
}
