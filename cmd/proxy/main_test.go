package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp"
)

// cli runs the proxy command in-process with the given data directory.
type cli struct {
	t       *testing.T
	dataDir string
	stderr  bytes.Buffer // every run's log output, scanned for addresses
}

func newCLI(t *testing.T) *cli {
	c := &cli{t: t, dataDir: t.TempDir()}
	t.Cleanup(func() {
		for _, secret := range []string{"customer@example.com", "jane.doe", "example.org"} {
			if strings.Contains(strings.ToLower(c.stderr.String()), secret) {
				t.Errorf("stderr carries a customer address (%s):\n%s", secret, c.stderr.String())
			}
		}
	})
	return c
}

func (c *cli) run(args ...string) (int, string, string) {
	return c.runStdin("", args...)
}

func (c *cli) runStdin(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--data-dir", c.dataDir}, args...)
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	c.stderr.Write(errb.Bytes())
	return code, out.String(), errb.String()
}

func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("proxy %v: exit %d\n%s%s", args, code, out, errs)
	}
	return out
}

func TestExitCodes(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"--bogus-flag", "demo"}, 2},
		{[]string{"token", "resolve"}, 2},
		{[]string{"token", "resolve", "a", "b"}, 2},
		{[]string{"keys", "status", "extra"}, 2},
		{[]string{"backup"}, 2},
		{[]string{"--help"}, 0},
		{[]string{"token", "resolve", "--reason", "test", "t1-aaaaaaaaaaaaaaaa@relay.company.example"}, 1},
		{[]string{"--config", "/nonexistent.yaml", "demo"}, 1},
	}
	for _, tt := range tests {
		if code, out, errs := c.run(tt.args...); code != tt.code {
			t.Errorf("proxy %v: exit %d, want %d\n%s%s", tt.args, code, tt.code, out, errs)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	c := newCLI(t)
	for _, cmd := range commands() {
		args := append(strings.Fields(cmd.name), "--help")
		code, _, errs := c.run(args...)
		if code != 0 || !strings.Contains(errs, "usage: proxy") || !strings.Contains(errs, cmd.summary) {
			t.Errorf("proxy %s --help: exit %d\n%s", cmd.name, code, errs)
		}
	}
}

// TestDemoOnEmbeddedDefault runs README's first command: both routes on
// the embedded quickstart, a message in, the reply out.
func TestDemoOnEmbeddedDefault(t *testing.T) {
	c := newCLI(t)
	start := time.Now()
	out := c.mustRun("demo")
	// The authentication check asks the demo's own DNS stand-in: offline,
	// the demo never waits for a DNS timeout.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("demo took %v", d)
	}
	for _, want := range []string{"2. What the CRM received", "@relay.company.example",
		"RCPT TO:<jane.doe@example.com>", "ok   the CRM saw no customer address",
		"| Authentication-Results: mx.company.example;\n   | \tspf=pass smtp.mailfrom=t1-",
		"ok   the CRM got SPF, DKIM and DMARC passes, the sender as her token"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Fatalf("demo output:\n%s", out)
	}
	info, err := os.Stat(filepath.Join(c.dataDir, "keyring.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("keyring: %v %v", info, err)
	}
	if !strings.Contains(c.stderr.String(), "evaluation only") {
		t.Fatal("no local keyring warning")
	}
	if strings.Contains(c.stderr.String(), "jane.doe@example.com") {
		t.Fatalf("the log names the customer:\n%s", c.stderr.String())
	}
	// A second run finds the same tokens (the map persists in data_dir).
	if out2 := c.mustRun("demo"); !strings.Contains(out2, "ok   the reply reached") {
		t.Fatalf("second demo run:\n%s", out2)
	}
}

func TestTokenRoundTripRotateBackupRestore(t *testing.T) {
	c := newCLI(t)
	tok := strings.TrimSpace(c.mustRun("token", "new", "--name", "Jane Doe", "Jane.Doe@example.org"))
	if !strings.HasSuffix(tok, "@relay.company.example") {
		t.Fatalf("token new = %q", tok)
	}
	resolve := func() {
		t.Helper()
		out := c.mustRun("token", "resolve", "--reason", "ticket 4711: reply bounced", strings.ToUpper(tok))
		if !strings.Contains(out, "Jane.Doe@example.org") || !strings.Contains(out, "Jane Doe") {
			t.Fatalf("resolve:\n%s", out)
		}
	}
	resolve()
	out := c.mustRun("keys", "rotate", "--record-key", "--token-key")
	if !strings.Contains(out, "rotated to v2") || !strings.Contains(out, "record key v2 added") || !strings.Contains(out, "token key v2 added") {
		t.Fatalf("rotate:\n%s", out)
	}
	resolve()
	if again := strings.TrimSpace(c.mustRun("token", "new", "jane.doe@example.org")); again != tok {
		t.Fatalf("token after rotation %s, want %s", again, tok)
	}
	status := c.mustRun("keys", "status")
	if !strings.Contains(status, "kek version:       2") || !strings.Contains(status, "record key:        current v2") || !strings.Contains(status, "none pending") {
		t.Fatalf("status:\n%s", status)
	}

	backup := filepath.Join(t.TempDir(), "b.db")
	c.mustRun("backup", backup)
	other := strings.TrimSpace(c.mustRun("token", "new", "customer@example.com"))
	c.mustRun("restore", backup)
	resolve()
	if code, _, errs := c.run("token", "resolve", "--reason", "check", other); code != 1 || !strings.Contains(errs, "no such token") {
		t.Fatalf("token made after the backup: exit %d %s", code, errs)
	}
	// Flags may follow the positional argument; "--" ends the flags.
	if out := c.mustRun("token", "resolve", tok, "--reason", "flags after the token"); !strings.Contains(out, "Jane.Doe@example.org") {
		t.Fatalf("resolve with the flag after the token:\n%s", out)
	}
	if code, _, _ := c.run("token", "resolve", "--", tok, "--reason", "x"); code != 2 {
		t.Fatal("arguments after -- were taken as flags")
	}
	if code, _, _ := c.run("token", "resolve", tok); code != 2 {
		t.Fatalf("token resolve without --reason: exit %d, want 2", code)
	}

	// Every step above is in the audit trail, which verifies, and which
	// holds no address.
	if out := c.mustRun("audit", "verify"); !strings.Contains(out, "result:           OK") {
		t.Fatalf("audit verify:\n%s", out)
	}
	trail := c.mustRun("audit", "export")
	for _, ev := range []string{`"token.created"`, `"compliance.resolve"`, `"keys.rotated"`, `"backup"`, `"restore"`, `"checkpoint"`, `"cli:`} {
		if !strings.Contains(trail, ev) {
			t.Errorf("audit trail lacks %s:\n%s", ev, trail)
		}
	}
	for _, secret := range []string{"jane.doe@example.org", "customer@example.com"} {
		if strings.Contains(strings.ToLower(trail), secret) {
			t.Errorf("audit trail holds %s", secret)
		}
	}
}

func TestBadConfig(t *testing.T) {
	c := newCLI(t)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("relay_domain: relay.example\ninternal_domains: [company.example]\nmailboxes: [{public: a@company.example, crm: b@company.example}]\ntokens: {length: 4}\n"), 0o600)
	code, _, errs := c.run("--config", path, "check-config")
	if code != 1 || !strings.Contains(errs, "tokens.length") || !strings.Contains(errs, path) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, out, _ := c.run("check-config")
	if code != 0 || !strings.Contains(out, "relay_domain: relay.company.example") {
		t.Fatalf("check-config on the quickstart: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "max_session_duration: 10m0s") {
		t.Errorf("check-config does not show smtp.max_session_duration:\n%s", out)
	}
	if !strings.Contains(out, "known_sender_grace: 30s") {
		t.Errorf("check-config does not show store.etcd.known_sender_grace:\n%s", out)
	}
	if !strings.Contains(out, "admin_url: \"\"") {
		t.Errorf("check-config does not show store.etcd.admin_url:\n%s", out)
	}
	if !strings.Contains(out, "pdf: strip") {
		t.Errorf("check-config does not show rewrite.attachments.pdf's default, strip:\n%s", out)
	}
}

func TestVaultUnreachableRefusesToStart(t *testing.T) {
	c := newCLI(t)
	path := filepath.Join(t.TempDir(), "vault.yaml")
	os.WriteFile(path, []byte(`relay_domain: relay.example
internal_domains: [company.example]
mailboxes: [{public: a@company.example, crm: b@company.example}]
keys: {provider: vault, vault: {address: "http://127.0.0.1:1"}}
`), 0o600)
	os.Setenv("VAULT_TOKEN", "irrelevant")
	defer os.Unsetenv("VAULT_TOKEN")
	code, _, errs := c.run("--config", path, "token", "new", "customer@example.com")
	if code != 1 || !strings.Contains(errs, "http://127.0.0.1:1") || !strings.Contains(errs, "connection refused") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestMissingKeyFileIsReported(t *testing.T) {
	c := newCLI(t)
	c.mustRun("token", "new", "customer@example.com")
	os.Remove(filepath.Join(c.dataDir, "keyring.json"))
	code, _, errs := c.run("token", "new", "customer@example.com")
	if code != 1 || !strings.Contains(errs, "does not exist") || !strings.Contains(errs, "restore it from your backup") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "keyring.json")); err == nil {
		t.Fatal("a new keyring was created over a map that needs the old one")
	}
}

func TestRewriteCommand(t *testing.T) {
	c := newCLI(t)
	msg := "From: Customer <customer@example.com>\r\nTo: support@company.example\r\nMessage-ID: <a@example.com>\r\n\r\nreach me at customer@example.com\r\n"
	code, out, errs := c.runStdin(msg, "rewrite", "--route", "inbound")
	if code != 0 || strings.Contains(out, "customer@example.com") || !strings.Contains(out, "@relay.company.example") {
		t.Fatalf("inbound: exit %d\n%s\n%s", code, out, errs)
	}
	code, back, errs := c.runStdin(out, "rewrite", "--route", "outbound")
	if code != 0 || !strings.Contains(back, "From: Customer <customer@example.com>") || !strings.Contains(back, "reach me at customer@example.com") {
		t.Fatalf("outbound: exit %d\n%s\n%s", code, back, errs)
	}

	smime := "From: customer@example.com\r\nContent-Type: application/pkcs7-mime\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIAC\r\n"
	code, out, errs = c.runStdin(smime, "rewrite", "--route", "inbound")
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || out != "" || !strings.HasPrefix(lines[len(lines)-1], "proxy rewrite: message refused: ") {
		t.Fatalf("unscannable: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = c.runStdin("To: t1-aaaaaaaaaaaaaaaa@relay.company.example\r\n\r\nhi\r\n", "rewrite", "--route", "outbound")
	if code != 1 || !strings.Contains(errs, "unknown or erased tokens") {
		t.Fatalf("unknown token: exit %d, %s", code, errs)
	}
	if code, _, _ := c.runStdin(msg, "rewrite"); code != 2 {
		t.Fatalf("rewrite without --route: exit %d, want 2", code)
	}
}

// TestRewriteLimitDefaultsAgree: policy cannot import tokenize, so the
// rewriter's limit defaults are written twice; this keeps them equal.
func TestRewriteLimitDefaultsAgree(t *testing.T) {
	l := policy.Defaults().Rewrite.Limits
	got := rewrite.Limits{MaxMessageBytes: l.MaxMessageBytes, MaxHeaderBytes: l.MaxHeaderBytes,
		MaxDepth: l.MaxMIMEDepth, MaxParts: l.MaxParts, MaxTextPartBytes: l.MaxTextPartBytes,
		MaxNewTokens: l.MaxNewTokens, MaxHeldBytes: l.MaxHeldBytes}
	if got != rewrite.DefaultLimits {
		t.Fatalf("policy defaults %+v, tokenize defaults %+v", got, rewrite.DefaultLimits)
	}
}

func TestHashPassword(t *testing.T) {
	c := newCLI(t)
	code, out, errs := c.runStdin("correct horse battery\n", "hash-password")
	hash := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(hash, "$argon2id$v=19$") || !smtp.CheckPassword(hash, "correct horse battery") {
		t.Fatalf("hash-password: exit %d, printed %q, %s", code, out, errs)
	}
	if code, _, errs := c.runStdin("short\n", "hash-password"); code != 1 || !strings.Contains(errs, "too short") {
		t.Fatalf("short password: exit %d, %s", code, errs)
	}
}
