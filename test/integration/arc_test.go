package integration

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
	"github.com/tokenproxy/tokenproxy/test/tools"
)

// TestServeARCBehindGateway drives the real binary behind a company
// gateway that ARC-seals (RFC 8617), every peer independent of our code:
// dkimpy (Debian python3-dkim) signs Bob's message for example.org (SPF:
// 192.0.2.1 only; DMARC p=reject) and, as the gateway gw.example, tags the
// subject and seals it; swaks delivers it from 127.0.0.1; smtp-sink is the
// CRM intake; dkimpy and Mail::DKIM verify what the CRM received.
//
//   - gw.example trusted: relayed, the override reported, our seal (i=2)
//     continuing the gateway's chain, which both verifiers pass;
//   - not trusted: 550 5.7.1 (DMARC p=reject), nothing relayed.
func TestServeARCBehindGateway(t *testing.T) {
	installMailAuthTools(t)
	z := dnstest.Start(t)
	key, keyFile := arcRSAKey(t)
	rec := "v=DKIM1; k=rsa; p=" + publicKeyB64(t, key)
	for _, name := range []string{"sel._domainkey.example.org", "arc._domainkey.gw.example", "arc1._domainkey.company.example"} {
		z.TXT(name, rec)
	}
	z.TXT("example.org", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.example.org", "v=DMARC1; p=reject")

	msg := "From: Bob Roe <bob.roe@example.org>\r\nTo: support@company.example\r\nSubject: hello\r\n" +
		"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMessage-ID: <arc-1@example.org>\r\n\r\nWhere is my order? Write to bob.roe@example.org.\r\n"
	signed := runTestdata(t, msg, "dkimpy.py", "sign", "rsa-sha256", keyFile, "example.org", "sel")
	tagged := strings.Replace(signed, "Subject: hello", "Subject: [EXTERNAL] hello", 1)
	// The gateway's own check, as dkimpy's sealer reads it: domains only.
	gwAR := "Authentication-Results: gw.example; arc=none; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org\r\n"
	forwarded := runTestdata(t, gwAR+tagged, "arcpy.py", "seal", keyFile, "gw.example", "arc", "gw.example")
	dataFile := filepath.Join(t.TempDir(), "forwarded.eml")
	if err := os.WriteFile(dataFile, []byte(forwarded), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%t", trusted), func(t *testing.T) {
			crmPort, crmDir := startSink(t)
			sv := writeARCConfig(t, fmt.Sprintf("127.0.0.1:%d", crmPort), z.Addr, keyFile, trusted)
			p := startServe(t, sv.config, sv.admin)
			code, out := swaks(t, "--server", fmt.Sprintf("127.0.0.1:%d", sv.inPort), "--ehlo", "mx.gw.example",
				"--from", "bob.roe@example.org", "--to", "support@company.example", "--data", "@"+dataFile)
			if !trusted {
				if code == 0 || !strings.Contains(out, "550 5.7.1") {
					t.Fatalf("untrusted gateway: exit %d, want 550 5.7.1\n%s", code, out)
				}
				// Only this message counts: the sink's port was free a
				// moment ago, and another package's test dialling what it
				// thinks a dead port may reach it (seen once under CI load).
				for _, m := range sinkMessages(t, crmDir) {
					if strings.Contains(m, "[EXTERNAL] hello") {
						t.Fatalf("the CRM received the refused message:\n%s", m)
					}
					t.Logf("the sink received another message (not ours):\n%.400s", m)
				}
				return
			}
			if code != 0 {
				t.Fatalf("swaks: exit %d\n%s\nproxy log:\n%s", code, out, p.log.String())
			}
			crm := waitSink(t, crmDir, 1)[0]
			for _, want := range []string{"ARC-Seal: i=2; a=rsa-sha256;", "cv=pass;", "ARC-Authentication-Results: i=2; mx.company.example;",
				"policy.arc-sealer=gw.example policy.override=trusted_forwarder", "arc=pass (as.1.d=gw.example as.1.s=arc, trusted i=1)"} {
				if !strings.Contains(crm, want) {
					t.Errorf("the CRM's message lacks %q:\n%s", want, crm)
				}
			}
			if strings.Contains(crm, "bob.roe@example.org") {
				t.Errorf("the CRM received the customer's address:\n%s", crm)
			}
			crmMsg := strings.ReplaceAll(crm, "\r\n", "\n")
			_, port, _ := net.SplitHostPort(z.Addr)
			if out := runTestdata(t, crmMsg, "arcpy.py", "verify", port); !strings.HasPrefix(out, "cv=pass") {
				t.Errorf("dkimpy on the CRM's message: %s", out)
			}
			if out, err := testdataTool(crmMsg, "/usr/bin/perl", "arc-verify.pl", port); err != nil || !strings.HasPrefix(out, "cv=pass") {
				t.Errorf("Mail::DKIM on the CRM's message: %v %s", err, out)
			}
		})
	}
}

// writeARCConfig is writeServeConfig's inbound route with the check on
// (DNS from the test server), the gateway trusted or not, and our seal.
func writeARCConfig(t *testing.T, crm, dnsAddr, keyFile string, trusted bool) served {
	t.Helper()
	sealers := "[]"
	if trusted {
		sealers = "[gw.example]"
	}
	sv := writeServeConfig(t, crm, "127.0.0.1:9", "info", "")
	rewriteConfig(t, sv.config, "auth_check: {enabled: false}", fmt.Sprintf(`auth_check:
    dns_server: "%s"
    dns_timeout: 2s
    trusted_arc_sealers: %s
    arc_seal: {domain: company.example, selector: arc1, key_file: %q}`, dnsAddr, sealers, keyFile))
	return sv
}

// installMailAuthTools installs dkimpy and Mail::DKIM with mailauth's
// script (test/tools runs it under the shared lock).
func installMailAuthTools(t *testing.T) {
	t.Helper()
	script, err := filepath.Abs("../../mailauth/testdata/install-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tools.RunScript(script); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// arcRSAKey makes the RSA key every party signs with here, in a PEM file.
func arcRSAKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path
}

func publicKeyB64(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// runTestdata runs one of mailauth's test scripts with Debian's python3.
func runTestdata(t *testing.T, stdin, script string, args ...string) string {
	t.Helper()
	out, err := testdataTool(stdin, "/usr/bin/python3", script, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	return out
}

func testdataTool(stdin, interpreter, script string, args ...string) (string, error) {
	cmd := exec.Command(interpreter, append([]string{filepath.Join("..", "..", "mailauth", "testdata", script)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
