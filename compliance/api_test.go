package compliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
)

// complianceHarness is the compliance API over a real engine (bbolt file,
// local keyring, audit trail) behind an httptest TLS server.
type complianceHarness struct {
	t      *testing.T
	e      *testEngine
	svc    *Service
	srv    *httptest.Server
	tokens map[string]string // principal → bearer token
	logs   bytes.Buffer
}

func newComplianceHarness(t *testing.T, maxPerHour int) *complianceHarness {
	h := &complianceHarness{t: t, tokens: map[string]string{}}
	h.e = newTestEngine(t, &h.logs)
	c := h.e.cfg.Compliance
	c.MaxResolutionsPerHour = maxPerHour
	c.Principals = nil
	for name, roles := range map[string][]string{"alice": {"officer"}, "sam": {"auditor"}, "otto": {"operator"}} {
		tok := "secret-" + name
		sum := sha256.Sum256([]byte(tok))
		h.tokens[name] = tok
		c.Principals = append(c.Principals, policy.Principal{Name: name, Roles: roles, TokenSHA256: hex.EncodeToString(sum[:])})
	}
	h.svc = h.e.service(c)
	mux := http.NewServeMux()
	h.svc.Register(mux)
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		h.srv.Close()
		h.e.close()
		for _, secret := range []string{"jane.customer@example.com", "bob@example.net"} {
			if strings.Contains(strings.ToLower(h.logs.String()), secret) {
				t.Errorf("log holds %s:\n%s", secret, h.logs.String())
			}
		}
	})
	return h
}

func (h *complianceHarness) call(who, method, path string, body any) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if tok, ok := h.tokens[who]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *complianceHarness) trail() string {
	b, err := os.ReadFile(h.e.trail.Path())
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func TestComplianceRolesAndAudit(t *testing.T) {
	h := newComplianceHarness(t, 50)
	ctx := context.Background()
	iss, err := h.e.m.Tokenize(audit.WithActor(ctx, "route:inbound"), "Jane.Customer@example.com", "Jane")
	if err != nil {
		t.Fatal(err)
	}
	resolve := map[string]string{"token": iss.Address, "reason": "ticket 4711: delivery failed"}
	cases := []struct {
		who, method, path string
		body              any
		want              int
	}{
		{"nobody", "POST", "/v1/compliance/resolve", resolve, http.StatusUnauthorized},
		{"sam", "POST", "/v1/compliance/resolve", resolve, http.StatusForbidden}, // an auditor cannot resolve
		{"otto", "POST", "/v1/compliance/erase", map[string]string{"address": "x@example.com", "reason": "r"}, http.StatusForbidden},
		{"alice", "GET", "/v1/audit/records", nil, http.StatusForbidden}, // an officer does not read the trail
		{"alice", "POST", "/v1/compliance/resolve", map[string]string{"token": iss.Address}, http.StatusBadRequest},
		{"alice", "POST", "/v1/compliance/resolve", map[string]string{"token": iss.Address, "reason": "asked by jane.customer@example.com"}, http.StatusBadRequest},
		{"alice", "POST", "/v1/compliance/resolve", map[string]string{"token": "t1-aaaaaaaaaaaaaaaa@relay.company.example", "reason": "r"}, http.StatusNotFound},
		{"alice", "POST", "/v1/compliance/resolve", "not an object", http.StatusBadRequest},
		{"alice", "POST", "/v1/compliance/lookup", map[string]string{"address": "not an address", "reason": "r"}, http.StatusBadRequest},
	}
	for _, c := range cases {
		if code, body := h.call(c.who, c.method, c.path, c.body); code != c.want {
			t.Errorf("%s %s %s = %d %s, want %d", c.who, c.method, c.path, code, body, c.want)
		}
	}

	code, body := h.call("alice", "POST", "/v1/compliance/resolve", resolve)
	if code != 200 || !strings.Contains(body, `"address": "Jane.Customer@example.com"`) {
		t.Fatalf("officer resolve = %d %s", code, body)
	}
	code, body = h.call("alice", "POST", "/v1/compliance/lookup", map[string]string{"address": "jane.customer@EXAMPLE.com", "reason": "subject access request 12"})
	if code != 200 || !strings.Contains(body, iss.Address) {
		t.Fatalf("lookup = %d %s", code, body)
	}
	code, body = h.call("alice", "POST", "/v1/compliance/export", map[string]string{"address": "jane.customer@example.com", "reason": "subject access request 12"})
	if code != 200 || !strings.Contains(body, `"token.created"`) || !strings.Contains(body, `"compliance.resolve"`) {
		t.Fatalf("export = %d %s", code, body)
	}

	trail := h.trail()
	if n := strings.Count(trail, `"event":"compliance.lookup"`); n != 1 {
		t.Errorf("%d lookup records, want 1: an export is one act, one record", n)
	}
	for _, want := range []string{
		`"event":"token.created","actor":"route:inbound"`,
		`"event":"compliance.resolve","actor":"principal:alice"`,
		`"event":"compliance.refused","actor":"principal:sam"`,
		`"event":"compliance.refused","actor":"unknown"`,
		`"event":"compliance.lookup","actor":"principal:alice"`,
		`"event":"compliance.export","actor":"principal:alice"`,
		`"reason":"ticket 4711: delivery failed"`,
	} {
		if !strings.Contains(trail, want) {
			t.Errorf("trail lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(trail), "jane.customer@example.com") {
		t.Error("the audit trail holds the address")
	}

	code, body = h.call("sam", "GET", "/v1/audit/records?event=compliance.resolve", nil)
	if code != 200 || strings.Count(body, "\n") != 2 { // the refused one is compliance.refused
		t.Fatalf("auditor records = %d %q", code, body)
	}
	code, body = h.call("sam", "GET", "/v1/audit/verify", nil)
	if code != 200 || !strings.Contains(body, `"ok": true`) {
		t.Fatalf("verify = %d %s", code, body)
	}
}

func TestComplianceBulkGuard(t *testing.T) {
	h := newComplianceHarness(t, 3)
	iss, err := h.e.m.Tokenize(context.Background(), "bob@example.net", "")
	if err != nil {
		t.Fatal(err)
	}
	req := map[string]string{"token": iss.Address, "reason": "bulk check"}
	for i := range 3 {
		if code, body := h.call("alice", "POST", "/v1/compliance/resolve", req); code != 200 {
			t.Fatalf("resolution %d = %d %s", i+1, code, body)
		}
	}
	if code, _ := h.call("alice", "POST", "/v1/compliance/resolve", req); code != http.StatusTooManyRequests {
		t.Fatalf("4th resolution in the hour = %d, want 429", code)
	}
	if !strings.Contains(h.trail(), `"why":"bulk_guard"`) {
		t.Error("the refused resolution is not audited")
	}
	if !strings.Contains(h.logs.String(), `"event":"bulk_guard"`) {
		t.Error("the refused resolution is not logged")
	}
}

// TestComplianceEraseEndToEnd: erasure through the API refuses the token
// afterwards, keeps the neighbours, and leaves no ciphertext or address in
// the database file (the route's 550 is tested in test/integration).
func TestComplianceEraseEndToEnd(t *testing.T) {
	h := newComplianceHarness(t, 50)
	ctx := context.Background()
	iss, _ := h.e.m.Tokenize(ctx, "jane.customer@example.com", "Jane")
	other, _ := h.e.m.Tokenize(ctx, "bob@example.net", "Bob")
	code, body := h.call("alice", "POST", "/v1/compliance/erase", map[string]string{"address": "Jane.Customer@example.com", "reason": "erasure request 99"})
	if code != 200 || !strings.Contains(body, iss.Address) || !strings.Contains(body, `"pages_wiped": true`) {
		t.Fatalf("erase = %d %s", code, body)
	}
	if _, err := h.e.m.Resolve(ctx, iss.Address); err == nil {
		t.Fatal("erased token still resolves")
	}
	if _, err := h.e.m.Resolve(ctx, other.Address); err != nil {
		t.Fatalf("neighbour: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(h.e.dir, "tokenproxy.db"))
	if bytes.Contains(bytes.ToLower(raw), []byte("jane.customer")) {
		t.Fatal("address in the database file")
	}
	if !strings.Contains(h.trail(), `"event":"compliance.erase","actor":"principal:alice","tokens":["`+iss.Address) {
		t.Error("erasure not audited with its token")
	}
}

// TestComplianceAuditFailureRefuses: an operation whose audit record
// cannot be written does not happen.
func TestComplianceAuditFailureRefuses(t *testing.T) {
	h := newComplianceHarness(t, 50)
	ctx := context.Background()
	iss, _ := h.e.m.Tokenize(ctx, "jane.customer@example.com", "")
	h.e.trail.Close(ctx) // every Append now fails
	code, _ := h.call("alice", "POST", "/v1/compliance/erase", map[string]string{"address": "jane.customer@example.com", "reason": "erasure request"})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("erase with the trail down = %d, want 503", code)
	}
	if _, err := h.e.m.Resolve(ctx, iss.Address); err != nil {
		t.Fatalf("the subject was erased although the erasure was not audited: %v", err)
	}
	code, body := h.call("alice", "POST", "/v1/compliance/resolve", map[string]string{"token": iss.Address, "reason": "r"})
	if code != http.StatusServiceUnavailable || strings.Contains(body, "jane") {
		t.Fatalf("resolve with the trail down = %d %s, want 503 without the address", code, body)
	}
	if _, err := h.e.m.Tokenize(ctx, "new.customer@example.com", ""); !errors.Is(err, tokenize.ErrAudit) {
		t.Fatalf("Tokenize with the trail down = %v, want ErrAudit", err)
	}
	if toks, _ := h.e.m.Lookup(ctx, "new.customer@example.com"); len(toks) != 0 {
		t.Fatal("unaudited token stored")
	}
}

func TestComplianceOnlineBackup(t *testing.T) {
	h := newComplianceHarness(t, 50)
	if _, err := h.e.m.Tokenize(context.Background(), "jane.customer@example.com", ""); err != nil {
		t.Fatal(err)
	}
	code, body := h.call("otto", "GET", "/v1/backup", nil)
	if code != 200 {
		t.Fatalf("backup = %d", code)
	}
	path := filepath.Join(t.TempDir(), "b.db")
	if _, err := saveBackup(strings.NewReader(body), path, boltstore.CheckFile); err != nil {
		t.Fatal(err)
	}
	if _, err := saveBackup(strings.NewReader(body[:len(body)/2]), path+".cut", boltstore.CheckFile); err == nil {
		t.Fatal("a cut backup stream was kept")
	}
	db, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := db.WrappedKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("backup lacks wrapped keys: %v", err)
	}
	if !strings.Contains(h.trail(), `"event":"backup","actor":"principal:otto"`) {
		t.Error("backup not audited")
	}
}

// TestComplianceBackupWithoutBackuper: a store with no online backup
// (etcd) answers 501 with what to do instead, and nothing is streamed.
func TestComplianceBackupWithoutBackuper(t *testing.T) {
	h := newComplianceHarness(t, 50)
	h.svc.db = nil
	code, body := h.call("otto", "GET", "/v1/backup", nil)
	if code != http.StatusNotImplemented || !strings.Contains(body, "etcd snapshot") {
		t.Fatalf("backup without a Backuper = %d %s; want 501 naming the etcd snapshot", code, body)
	}
}
