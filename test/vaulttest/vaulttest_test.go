package vaulttest_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
)

// shared is one server for the tests that don't need their own, as
// StartMain is meant to be used.
var shared *vaulttest.Server

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }

// call does a Vault API request with the root token and decodes the JSON
// response body into out (if non-nil).
func call(t *testing.T, s *vaulttest.Server, method, path string, body, out any) {
	t.Helper()
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, s.Addr+"/v1/"+path, &rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, raw.Bytes())
	}
	if out != nil {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw.Bytes())
		}
	}
}

func TestPremounted(t *testing.T) {
	var mounts, auths struct {
		Data map[string]struct{ Type string }
	}
	call(t, shared, "GET", "sys/mounts", nil, &mounts)
	call(t, shared, "GET", "sys/auth", nil, &auths)
	if mounts.Data["transit/"].Type != "transit" {
		t.Errorf("transit/ not mounted: %v", mounts.Data)
	}
	if auths.Data["approle/"].Type != "approle" {
		t.Errorf("auth/approle not enabled: %v", auths.Data)
	}
}

func TestTransitDataKeyRoundTrip(t *testing.T) {
	call(t, shared, "POST", "transit/keys/tokenproxy", map[string]any{"type": "aes256-gcm96"}, nil)

	var dk struct{ Data struct{ Ciphertext string } }
	call(t, shared, "POST", "transit/datakey/wrapped/tokenproxy", map[string]any{"bits": 256}, &dk)
	if !strings.HasPrefix(dk.Data.Ciphertext, "vault:v1:") {
		t.Fatalf("wrapped data key = %q", dk.Data.Ciphertext)
	}

	var dec struct{ Data struct{ Plaintext string } }
	call(t, shared, "POST", "transit/decrypt/tokenproxy", map[string]any{"ciphertext": dk.Data.Ciphertext}, &dec)
	key, err := base64.StdEncoding.DecodeString(dec.Data.Plaintext)
	if err != nil || len(key) != 32 {
		t.Fatalf("decrypted data key: %d bytes, err %v", len(key), err)
	}
}

func TestFileAudit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	call(t, shared, "PUT", "sys/audit/file", map[string]any{
		"type":    "file",
		"options": map[string]string{"file_path": path},
	}, nil)
	t.Cleanup(func() { call(t, shared, "DELETE", "sys/audit/file", nil, nil) })

	call(t, shared, "GET", "sys/mounts", nil, nil)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"path":"sys/mounts"`)) {
		t.Fatalf("audit log lacks the sys/mounts request:\n%s", data)
	}
}

func TestTLS(t *testing.T) {
	s := vaulttest.Start(t, vaulttest.WithTLS())
	if !strings.HasPrefix(s.Addr, "https://127.0.0.1:") || s.CACertFile == "" {
		t.Fatalf("Addr %q, CACertFile %q", s.Addr, s.CACertFile)
	}
	var health struct{ Initialized, Sealed bool }
	call(t, s, "GET", "sys/health", nil, &health)
	if !health.Initialized || health.Sealed {
		t.Fatalf("health = %+v", health)
	}

	// Untrusted CA and TLS 1.1 must both be refused.
	if _, err := http.Get(s.Addr + "/v1/sys/health"); err == nil {
		t.Error("request without the CA succeeded")
	}
	old := s.Client()
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	if _, err := old.Get(s.Addr + "/v1/sys/health"); err == nil {
		t.Error("TLS 1.1 request succeeded")
	}
}

func TestKill(t *testing.T) {
	s := vaulttest.Start(t)
	s.Kill()
	c := &http.Client{Timeout: 5 * time.Second}
	if _, err := c.Get(s.Addr + "/v1/sys/health"); err == nil {
		t.Fatal("Vault still answers after Kill")
	}
	s.Stop() // no-op after Kill
}
