package mailauth

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// ARC against dkimpy (Debian python3-dkim, testdata/arcpy.py), an
// implementation that shares no code with ours, keys from the test DNS
// server on loopback: each side verifies the other's chains, and both
// refuse the same tampering. Mail::DKIM::ARC (Debian libmail-dkim-perl,
// testdata/arc-verify.pl) is a third opinion on the same messages.

// dkimpySealed seals m with dkimpy as domain, after adding the
// Authentication-Results field dkimpy copies into the set (its arc=
// result gives cv=).
func dkimpySealed(t *testing.T, keyFile, domain, results string, m []byte) []byte {
	t.Helper()
	in := append([]byte("Authentication-Results: "+domain+"; "+results+"\r\n"), m...)
	out, err := runTool(t, in, python3, "arcpy.py", "seal", keyFile, domain, "arc", domain)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

func dkimpyVerify(t *testing.T, port string, m []byte) (string, bool) {
	t.Helper()
	out, err := runTool(t, m, python3, "arcpy.py", "verify", port)
	return out, err == nil && strings.HasPrefix(out, "cv=pass")
}

// mailDKIMVerify validates m's chain with Mail::DKIM::ARC::Verifier (Perl),
// a third implementation.
func mailDKIMVerify(t *testing.T, port string, m []byte) (string, bool) {
	t.Helper()
	out, err := runTool(t, m, perl, "arc-verify.pl", port)
	return out, err == nil && strings.HasPrefix(out, "cv=pass")
}

func TestDkimpyVerifiesOurARCSeal(t *testing.T) {
	requireTools(t)
	z, key := arcZone(t)
	port := dnsPort(t, z)
	one := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	if out, ok := dkimpyVerify(t, port, one); !ok {
		t.Fatalf("dkimpy does not verify our seal (i=1):\n%s\n%s", out, one)
	}
	v := arcVerify(t, z, one)
	two := arcSealed(t, key, "company.example", &v.ARC, v.AuthenticationResults("company.example", nil), one)
	if out, ok := dkimpyVerify(t, port, two); !ok {
		t.Fatalf("dkimpy does not verify our seal continuing a chain (i=2):\n%s\n%s", out, two)
	}
	for _, m := range [][]byte{one, two} {
		if out, ok := mailDKIMVerify(t, port, m); !ok {
			t.Fatalf("Mail::DKIM does not verify our seal:\n%s\n%s", out, m)
		}
	}
	tampered := bytes.Replace(two, []byte("where is"), []byte("where was"), 1)
	if out, ok := dkimpyVerify(t, port, tampered); ok {
		t.Errorf("dkimpy passed a changed body:\n%s", out)
	}
	if out, ok := mailDKIMVerify(t, port, tampered); ok {
		t.Errorf("Mail::DKIM passed a changed body:\n%s", out)
	}
	if got := arcVerify(t, z, tampered).ARC.Result; got != ResultFail {
		t.Errorf("we found %s for a changed body, want fail", got)
	}
}

func TestWeVerifyDkimpyARCChain(t *testing.T) {
	requireTools(t)
	z, key := arcZone(t)
	port := dnsPort(t, z)
	keyFile := writeKeyFile(t, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))

	one := dkimpySealed(t, keyFile, "fwd.example", "arc=none; dkim=pass header.d=customer.example", tagSubject(customerSigned(t, key)))
	two := dkimpySealed(t, keyFile, "list.example", "arc=pass", one)
	three := dkimpySealed(t, keyFile, "evil.example", "arc=pass", two)
	for _, m := range [][]byte{one, two, three} {
		if out, ok := dkimpyVerify(t, port, m); !ok {
			t.Fatalf("dkimpy does not verify its own chain:\n%s\n%s", out, m)
		}
	}
	v := arcVerify(t, z, two, "fwd.example", "list.example")
	if v.ARC.Result != ResultPass || v.ARC.Instances != 2 || v.ARC.Sets[1].Domain != "list.example" {
		t.Fatalf("our verdict on dkimpy's chain: %+v\n%s", v.ARC, two)
	}
	if v.DMARC.ARCOverride != "list.example" && v.DMARC.ARCOverride != "fwd.example" {
		t.Errorf("no override by the trusted chain of dkimpy: %+v", v.DMARC)
	}

	// A broken middle instance: the AAR of instance 2 changed. Both say
	// fail.
	broken := bytes.Replace(three, []byte("i=2; list.example;"), []byte("i=2; list.example; dkim=pass header.d=customer.example;"), 1)
	if bytes.Equal(broken, three) {
		t.Fatalf("no instance 2 results to change:\n%s", three)
	}
	if out, ok := dkimpyVerify(t, port, broken); ok {
		t.Errorf("dkimpy passed a chain with a changed middle instance:\n%s", out)
	}
	if out, ok := mailDKIMVerify(t, port, three); !ok {
		t.Errorf("Mail::DKIM does not verify dkimpy's chain:\n%s", out)
	}
	if out, ok := mailDKIMVerify(t, port, broken); ok {
		t.Errorf("Mail::DKIM passed a chain with a changed middle instance:\n%s", out)
	}
	if got := arcVerify(t, z, broken); got.ARC.Result != ResultFail {
		t.Errorf("we found %s for a chain with a changed middle instance, want fail", got.ARC.Result)
	}
	// Tampered body after the last seal.
	tampered := bytes.Replace(three, []byte("where is"), []byte("where was"), 1)
	if out, ok := dkimpyVerify(t, port, tampered); ok {
		t.Errorf("dkimpy passed a changed body:\n%s", out)
	}
	if got := arcVerify(t, z, tampered); got.ARC.Result != ResultFail {
		t.Errorf("we found %s for a changed body, want fail", got.ARC.Result)
	}
}
