package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeARCKey writes a new RSA-2048 key as PKCS#1 PEM and returns the file
// and the base64 public key (SubjectPublicKeyInfo) its record carries.
func writeARCKey(t *testing.T) (string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "arc.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, base64.StdEncoding.EncodeToString(pub)
}

// arcConfig writes a configuration whose inbound route seals with keyFile.
func arcConfig(t *testing.T, keyFile string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
inbound:
  hostname: mx.company.example
  auth_check:
    dns_timeout: 1s
    trusted_arc_sealers: [gw.company.example]
    arc_seal: {domain: company.example, selector: arc1, key_file: %q}
`, keyFile)
	path := filepath.Join(t.TempDir(), "tokenproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestARCSealWiring: with inbound.auth_check.arc_seal, `proxy dns` prints
// the sealing key's record and what the CRM receives in the demo carries
// our ARC set, its results our Authentication-Results; an Ed25519 key is
// refused at start, naming the field.
func TestARCSealWiring(t *testing.T) {
	keyFile, pub := writeARCKey(t)
	c := newCLI(t)
	cfg := arcConfig(t, keyFile)
	if out := c.mustRun("--config", cfg, "dns"); !strings.Contains(out, `arc1._domainkey.company.example. IN TXT "v=DKIM1; k=rsa; p=`) ||
		!strings.Contains(strings.ReplaceAll(strings.ReplaceAll(out, `" "`, ""), "\n", ""), pub) ||
		!strings.Contains(out, "; no DKIM record: outbound.dkim is off") {
		t.Fatalf("dns output lacks the ARC key record:\n%s", out)
	}
	out := c.mustRun("--config", cfg, "demo")
	atCRM, _, _ := strings.Cut(out, "3. ")
	for _, want := range []string{"| ARC-Seal: i=1; a=rsa-sha256;", "cv=none;", "| ARC-Message-Signature: i=1;", "| ARC-Authentication-Results: i=1; mx.company.example;"} {
		if !strings.Contains(atCRM, want) || strings.Contains(out, "FAIL") {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}

	edFile, _ := writeDKIMKey(t)
	code, _, errs := c.run("--config", arcConfig(t, edFile), "demo")
	if code == 0 || !strings.Contains(errs, "inbound.auth_check.arc_seal") || !strings.Contains(errs, "RSA") {
		t.Fatalf("an Ed25519 sealing key: exit %d\n%s", code, errs)
	}
}
