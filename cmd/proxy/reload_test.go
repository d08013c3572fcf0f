package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/test/logbuf"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// reloadFixture is a built (not listening) pair of routes on a
// configuration file the test rewrites, and the reloader under test.
type reloadFixture struct {
	t       *testing.T
	dir     string
	logs    *logbuf.Buffer
	a       *app
	rs      *routes
	rl      *reloader
	changed [][]string // what onReload was called with
}

// write writes the fixture's configuration file: the mailboxes list, the
// inbound listen address and the body of the smtp section.
func (f *reloadFixture) write(mailboxes, listen, smtp string) {
	f.t.Helper()
	yaml := fmt.Sprintf(`data_dir: %s
relay_domain: relay.company.example
internal_domains: [company.example, crm.example]
mailboxes: %s
log: {format: json, level: info}
inbound:
  listen: %s
  hostname: mx.company.example
  auth_check: {enabled: false}
  downstream: {address: "127.0.0.1:2526", tls: insecure}
outbound:
  listen: 127.0.0.1:0
  hostname: relay.company.example
  allowed_domains: [company.example]
  downstream: {address: "127.0.0.1:2527", tls: insecure}
admin: {listen: "127.0.0.1:0"}
smtp: {%s}
`, filepath.Join(f.dir, "data"), mailboxes, listen, smtp)
	if err := os.WriteFile(filepath.Join(f.dir, "proxy.yaml"), []byte(yaml), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

const oneMailbox = `[{public: support@company.example, crm: support@crm.example}]`

func newReloadFixture(t *testing.T) (*reloadFixture, *prometheus.Registry) {
	f := &reloadFixture{t: t, dir: t.TempDir(), logs: &logbuf.Buffer{}}
	f.write(oneMailbox, "127.0.0.1:0", "max_recipients: 100")
	f.a = &app{configPath: filepath.Join(f.dir, "proxy.yaml"), stderr: f.logs}
	cfg, err := f.a.config()
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.a.openEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	f.rs, err = buildRoutes(cfg, e, f.a.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rs.in.Close(); f.rs.out.Close(); f.rs.closeDownstreams() })
	reg := prometheus.NewRegistry()
	f.rl = newReloader(f.a, cfg, e, f.rs, reg)
	f.rl.onReload = func(_ *policy.Config, c []string) { f.changed = append(f.changed, c) }
	t.Cleanup(func() {
		t.Log(f.logs.String())
		if strings.Contains(f.logs.String(), "jane.doe@example.com") {
			t.Errorf("the log names an address:\n%s", f.logs.String())
		}
	})
	return f, reg
}

func reloadCount(t *testing.T, rl *reloader, result string) float64 {
	t.Helper()
	return testutil.ToFloat64(rl.results.WithLabelValues(result))
}

// TestReloaderAppliesAndRefuses: a valid file applies (new downstreams,
// the log level, the hook with the changed paths); an invalid one changes
// nothing and is logged by field path, without the value; a restart-only
// change is kept at its running value with a warning.
func TestReloaderAppliesAndRefuses(t *testing.T) {
	f, reg := newReloadFixture(t)
	oldDowns := slices.Clone(f.rs.downs)

	f.write(`[{public: support@company.example, crm: support@crm.example}, {public: sales@company.example, crm: sales@crm.example}]`,
		"127.0.0.1:0", "max_recipients: 7")
	if err := f.rl.reload(); err != nil {
		t.Fatal(err)
	}
	cur := f.rl.current()
	if len(cur.Mailboxes) != 2 || cur.SMTP.MaxRecipients != 7 {
		t.Fatalf("running configuration after the reload: %+v", cur)
	}
	if want := []string{"mailboxes", "smtp.max_recipients"}; len(f.changed) != 1 || !slices.Equal(f.changed[0], want) {
		t.Fatalf("onReload calls = %q, want one with %q", f.changed, want)
	}
	if f.rs.downs[0] == oldDowns[0] || f.rs.downs[1] == oldDowns[1] {
		t.Error("the reload kept the old downstreams")
	}
	if !strings.Contains(f.logs.String(), `"msg":"configuration reloaded","event":"reload","changed":["mailboxes","smtp.max_recipients"]`) {
		t.Errorf("no reload line with the changed paths:\n%s", f.logs.String())
	}
	if n := reloadCount(t, f.rl, reloadOK); n != 1 {
		t.Errorf("ok reloads = %v", n)
	}

	// Invalid: nothing changes, the field is named, the value is not.
	f.write(`[{public: jane.doe@example.com, crm: support@crm.example}]`, "127.0.0.1:0", "max_recipients: 9")
	if err := f.rl.reload(); err == nil {
		t.Fatal("an invalid file was applied")
	}
	if cur := f.rl.current(); len(cur.Mailboxes) != 2 || cur.SMTP.MaxRecipients != 7 || len(f.changed) != 1 {
		t.Fatalf("an invalid file changed the running configuration: %+v", cur)
	}
	if !strings.Contains(f.logs.String(), `"event":"reload_invalid"`) || !strings.Contains(f.logs.String(), `"field":"mailboxes[0].public"`) {
		t.Errorf("the refusal does not name the field:\n%s", f.logs.String())
	}
	if n := reloadCount(t, f.rl, reloadError); n != 1 {
		t.Errorf("error reloads = %v", n)
	}

	// A restart-only field keeps its running value; the rest applies.
	f.write(oneMailbox, "127.0.0.1:2999", "max_recipients: 9")
	if err := f.rl.reload(); err != nil {
		t.Fatal(err)
	}
	if cur := f.rl.current(); cur.Inbound.Listen != "127.0.0.1:0" || cur.SMTP.MaxRecipients != 9 || len(cur.Mailboxes) != 1 {
		t.Fatalf("after a restart-only change: listen %s, max_recipients %d", cur.Inbound.Listen, cur.SMTP.MaxRecipients)
	}
	if !strings.Contains(f.logs.String(), `"msg":"configuration change needs a restart; keeping the running value","event":"reload_needs_restart","fields":["inbound.listen"]`) {
		t.Errorf("no restart warning naming inbound.listen:\n%s", f.logs.String())
	}

	// The metric is registered where the others are scraped.
	if n, err := testutil.GatherAndCount(reg, "tokenproxy_config_reloads_total"); err != nil || n != 2 {
		t.Errorf("tokenproxy_config_reloads_total series: %d, %v", n, err)
	}
}

// TestReloaderLogLevel: log.level applies at once.
func TestReloaderLogLevel(t *testing.T) {
	f, _ := newReloadFixture(t)
	if f.a.log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug enabled at level info")
	}
	data, err := os.ReadFile(f.a.configPath)
	if err != nil {
		t.Fatal(err)
	}
	debug := strings.Replace(string(data), "level: info", "level: debug", 1)
	if err := os.WriteFile(f.a.configPath, []byte(debug), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.rl.reload(); err != nil {
		t.Fatal(err)
	}
	if !f.a.log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug not enabled after the reload")
	}
}
