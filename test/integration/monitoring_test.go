package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenproxy/tokenproxy/test/etcdtest"
	"github.com/tokenproxy/tokenproxy/test/monitoring"
)

// TestMonitoringKitMatchesMetrics starts `proxy serve` with every part
// that exports metrics (keys in a real Vault, the map in a real etcd
// cluster over mTLS, the compliance API so the admin listener speaks
// TLS), relays
// one message, scrapes /metrics, and checks that every metric the alert
// rules and the Grafana dashboard of deploy/monitoring use is a family
// the proxy exports (a histogram's _bucket, _sum and _count included):
// a renamed metric fails here, not silently on an operator's dashboard.
func TestMonitoringKitMatchesMetrics(t *testing.T) {
	ca := etcdtest.NewCA(t, "monitoring-ca")
	cl := etcdtest.StartWith(t, etcdtest.Options{TLS: ca})
	etcdCert, etcdKey := ca.Issue(t, "monitoring-a")
	key := createTransitKey(t, shared, "monitoring")
	crm, smart := startMemSink(t), startMemSink(t)
	sv := writeServeConfig(t, crm.addr, smart.addr, "info", "client_networks: [127.0.0.0/8]")
	tokenFile := filepath.Join(filepath.Dir(sv.config), "vault-token")
	if err := os.WriteFile(tokenFile, []byte(shared.RootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("alice-token"))
	appendConfig(t, sv.config, fmt.Sprintf(`keys:
  provider: vault
  vault:
    address: "%s"
    key: %s
    auth: {method: token, token_file: %s}
store:
  backend: etcd
  etcd: {endpoints: ["%s"], node_id: monitoring-a, tls: {ca_file: %s, cert_file: %s, key_file: %s}}
compliance:
  enabled: true
  principals: [{name: alice, roles: [officer], token_sha256: %s}]
retention: {token_max_idle: 8760h}
`, shared.Addr, key, tokenFile, strings.Join(cl.Endpoints(), `", "`), ca.CertFile, etcdCert, etcdKey, hex.EncodeToString(h[:])))
	p := startServe(t, sv.config, sv.admin)
	if r := sendCustomer(sv.inPort, "monitoring.customer@example.com", "<m1@mail.example.com>"); r != "250" {
		t.Fatalf("customer message: %s\n%s", r, p.log.String())
	}

	// The retention sweeper's first campaign (tokenproxy_cluster_leader)
	// runs in the background: give it a few seconds on a loaded machine.
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body = httpGet("https://" + sv.admin + "/metrics")
		if code != 200 || strings.Contains(body, "tokenproxy_cluster_leader{") || time.Now().After(deadline) {
			break
		}
	}
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	types := map[string]string{}
	for name, f := range families {
		types[name] = strings.ToLower(f.GetType().String())
	}
	// The families this test exists for: the new ones must be there.
	for _, name := range []string{
		"tokenproxy_tls_certificate_expiry_timestamp_seconds", "tokenproxy_vault_token_expiry_timestamp_seconds",
		"tokenproxy_vault_logins_total", "tokenproxy_store_fresh", "tokenproxy_audit_checkpoints_total",
		"tokenproxy_tls_client_certificate_expiry_timestamp_seconds", "tokenproxy_cluster_leader",
		"tokenproxy_outbox_takeovers_total", "tokenproxy_outbox_takeover_records_total",
	} {
		if _, ok := types[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if f := families["tokenproxy_tls_certificate_expiry_timestamp_seconds"]; f != nil && len(f.GetMetric()) != 3 {
		t.Errorf("certificate expiry: %d series, want 3 (inbound, outbound, admin)", len(f.GetMetric()))
	}

	dir, err := monitoring.Dir()
	if err != nil {
		t.Fatal(err)
	}
	d, err := monitoring.ReadDashboard(filepath.Join(dir, monitoring.DashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := monitoring.ReadRules(filepath.Join(dir, monitoring.RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, q := range append(d.Queries(), rules.Queries()...) {
		for _, name := range monitoring.MetricNames(q.Expr) {
			if _, ok := monitoring.Family(name, types); !ok {
				t.Errorf("%s uses %s, which /metrics does not export", q.Where, name)
			}
			used[name] = true
		}
	}
	t.Logf("%d metric names in the kit, all exported; /metrics has %d families", len(used), len(families))
	if strings.Contains(body, "monitoring.customer") {
		t.Error("/metrics names the customer")
	}
}
