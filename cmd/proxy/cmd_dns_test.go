package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeDKIMKey writes a new Ed25519 key as PKCS#8 PEM (what `openssl
// genpkey -algorithm ed25519` writes) and returns the file and the base64
// public key a DKIM record carries (RFC 8463 §4.2).
func writeDKIMKey(t *testing.T) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, base64.StdEncoding.EncodeToString(pub)
}

// dnsConfig writes a configuration that signs with keyFile and checks DNS
// through dnsAddr.
func dnsConfig(t *testing.T, keyFile, dnsAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: [{public: support@company.example, crm: support@crm.example}]
inbound:
  hostname: mx.company.example
  auth_check: {dns_server: %q, dns_timeout: 1s}
outbound:
  spf_networks: [192.0.2.25]
  dkim: {domain: company.example, selector: tp1, key_file: %q}
dns:
  dmarc_reports: [dmarc@company.example]
  tls_reports: [tls@company.example]
`, dnsAddr, keyFile)
	path := filepath.Join(t.TempDir(), "tokenproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDNSCommand: the records to publish, as zone-file lines; --check
// reports each record DNS does not answer as printed, and exits 0 once
// DNS serves exactly what was printed.
func TestDNSCommand(t *testing.T) {
	dns, err := startDNSStandin()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.close()
	keyFile, pub := writeDKIMKey(t)
	c := newCLI(t)
	cfg := dnsConfig(t, keyFile, dns.addr())
	out := c.mustRun("--config", cfg, "dns", "--spf-network", "198.51.100.0/24")
	for _, want := range []string{
		"relay.company.example. IN MX 10 mx.company.example.\n",
		`company.example. IN TXT "v=spf1 ip4:192.0.2.25 ip4:198.51.100.0/24 -all"` + "\n",
		`_dmarc.company.example. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@company.example"` + "\n",
		`tp1._domainkey.company.example. IN TXT "v=DKIM1; k=ed25519; p=` + pub + `"` + "\n",
		`_mta-sts.relay.company.example. IN TXT "v=STSv1; id=`,
		";   mx: mx.company.example\n",
		`_smtp._tls.relay.company.example. IN TXT "v=TLSRPTv1; rua=mailto:tls@company.example"` + "\n",
		"; DKIM (RFC 6376): the public key verifying signatures with d=company.example s=tp1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Nothing published: every record is reported, exit 1.
	code, checked, _ := c.run("--config", cfg, "dns", "--check", "--spf-network", "198.51.100.0/24")
	if code != 1 || strings.Count(checked, "MISMATCH") != 6 || !strings.Contains(checked, "MISMATCH _dmarc.company.example TXT: not published") ||
		!strings.Contains(checked, "MISMATCH relay.company.example MX: not published") {
		t.Fatalf("--check on empty DNS: exit %d\n%s", code, checked)
	}

	// DNS serves what was printed, but DMARC is still p=none.
	publishZone(t, dns, out)
	dns.setTXT("_dmarc.company.example", "v=DMARC1; p=none", "google-site-verification=x")
	code, checked, _ = c.run("--config", cfg, "dns", "--check", "--spf-network", "198.51.100.0/24")
	if code != 1 || strings.Count(checked, "MISMATCH") != 1 || !strings.Contains(checked, "TXT: differs\n") ||
		!strings.Contains(checked, "  found: v=DMARC1; p=none\n") {
		t.Fatalf("--check with p=none: exit %d\n%s", code, checked)
	}

	publishZone(t, dns, out)
	if code, checked, errs := c.run("--config", cfg, "dns", "--check", "--spf-network", "198.51.100.0/24"); code != 0 ||
		!strings.Contains(checked, "; --check: every record matches") {
		t.Fatalf("--check on published DNS: exit %d\n%s%s", code, checked, errs)
	}
}

// publishZone serves the TXT and MX lines of `proxy dns` output.
func publishZone(t *testing.T, dns *dnsStandin, zone string) {
	t.Helper()
	for _, line := range strings.Split(zone, "\n") {
		name, rest, ok := strings.Cut(line, ". IN ")
		if !ok || strings.HasPrefix(line, ";") {
			continue
		}
		switch typ, data, _ := strings.Cut(rest, " "); typ {
		case "TXT":
			dns.setTXT(name, unquoteTXT(t, data))
		case "MX":
			_, host, _ := strings.Cut(data, " ")
			dns.setMX(name, strings.TrimSuffix(host, "."))
		}
	}
}

// unquoteTXT joins the quoted character-strings of a TXT line.
func unquoteTXT(t *testing.T, data string) string {
	t.Helper()
	var b strings.Builder
	for _, q := range strings.SplitAfter(data, `" "`) {
		q = strings.TrimSuffix(q, ` "`)
		if !strings.HasPrefix(q, `"`) {
			q = `"` + q
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			t.Fatalf("TXT data %s: %v", data, err)
		}
		b.WriteString(s)
	}
	return b.String()
}

// TestDNSCommandErrors: a bad flag is a usage error; an unreadable key
// file names the field.
func TestDNSCommandErrors(t *testing.T) {
	c := newCLI(t)
	if code, _, errs := c.run("dns", "--spf-network", "not-a-network"); code != 2 || !strings.Contains(errs, "--spf-network") {
		t.Fatalf("bad --spf-network: exit %d\n%s", code, errs)
	}
	cfg := dnsConfig(t, "/nonexistent/dkim.pem", "127.0.0.1:53")
	if code, _, errs := c.run("--config", cfg, "dns"); code != 1 || !strings.Contains(errs, "outbound.dkim") {
		t.Fatalf("missing key file: exit %d\n%s", code, errs)
	}
}

// TestDemoSignsWithConfiguredKey: with outbound.dkim set, the reply the
// customer's server receives carries our signature (the wiring of serve's
// routes, through the demo).
func TestDemoSignsWithConfiguredKey(t *testing.T) {
	keyFile, _ := writeDKIMKey(t)
	c := newCLI(t)
	cfg := dnsConfig(t, keyFile, "127.0.0.1:53") // the demo points the check at its own DNS
	start := time.Now()
	out := c.mustRun("--config", cfg, "demo")
	_, atCustomer, _ := strings.Cut(out, "4. What the customer's mail server received")
	if !strings.Contains(atCustomer, "| DKIM-Signature: a=ed25519-sha256;") || !strings.Contains(atCustomer, "d=company.example;") ||
		strings.Contains(out, "FAIL") {
		t.Fatalf("demo output:\n%s", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("demo took %v", d)
	}
}
