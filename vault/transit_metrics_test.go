package vault_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokenproxy/tokenproxy/test/vaulttest"
	"github.com/tokenproxy/tokenproxy/vault"
)

// metricValue reads one series from reg: name, and for a vector the value
// of its only label (empty for none). Absent: -1.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			return sampleValue(m)
		}
	}
	return -1
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return -1
}

// waitMetric polls until cond holds for the series, or fails after 30 s.
func waitMetric(t *testing.T, reg *prometheus.Registry, name, label string, cond func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := metricValue(t, reg, name, label)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v after 30s", name, label, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTransitMetricsRootToken: a token without expiry is a login with a
// lease of 0, and nothing to renew.
func TestTransitMetricsRootToken(t *testing.T) {
	reg := prometheus.NewRegistry()
	newTransit(t, rootConfig(shared, createKey(t, shared, "metrics-root")), vault.WithMetrics(vault.NewTransitMetrics(reg)))
	for _, tt := range []struct {
		name, label string
		want        float64
	}{
		{"tokenproxy_vault_logins_total", "ok", 1},
		{"tokenproxy_vault_logins_total", "error", 0},
		{"tokenproxy_vault_token_ttl_seconds", "", 0},
		{"tokenproxy_vault_token_expiry_timestamp_seconds", "", 0},
		{"tokenproxy_vault_token_renewals_total", "", 0},
	} {
		if got := metricValue(t, reg, tt.name, tt.label); got != tt.want {
			t.Errorf("%s{%s} = %v, want %v", tt.name, tt.label, got, tt.want)
		}
	}
}

// TestTransitMetricsRenewAndRelogin: AppRole tokens that live seconds are
// renewed, then replaced by a new login; each moves the lease gauges.
func TestTransitMetricsRenewAndRelogin(t *testing.T) {
	key := createKey(t, shared, "metrics-relogin")
	root := rootClient(t, shared)
	putPolicy(t, root, "tokenproxy-metrics-relogin", transitPolicy(key))
	roleID := appRole(t, root, "metrics-relogin", "tokenproxy-metrics-relogin", map[string]any{"token_ttl": "3s", "token_max_ttl": "6s"})
	reg := prometheus.NewRegistry()
	start := time.Now()
	newTransit(t, appRoleConfig(shared, key, roleID, writeFile(t, "secret_id", newSecretID(t, root, "metrics-relogin")), false),
		vault.WithMetrics(vault.NewTransitMetrics(reg)))

	if ttl := metricValue(t, reg, "tokenproxy_vault_token_ttl_seconds", ""); ttl != 3 {
		t.Errorf("ttl after login = %v, want 3", ttl)
	}
	if exp := metricValue(t, reg, "tokenproxy_vault_token_expiry_timestamp_seconds", ""); exp < float64(start.Unix()+2) || exp > float64(time.Now().Unix()+4) {
		t.Errorf("expiry after login = %v, want about %d", exp, start.Unix()+3)
	}
	waitMetric(t, reg, "tokenproxy_vault_token_renewals_total", "", func(v float64) bool { return v >= 1 })
	waitMetric(t, reg, "tokenproxy_vault_logins_total", "ok", func(v float64) bool { return v >= 2 })
	if e := metricValue(t, reg, "tokenproxy_vault_logins_total", "error"); e != 0 {
		t.Errorf("login errors = %v, want 0", e)
	}
}

// TestTransitMetricsVaultUnreachableAtRenewal: Vault dies after start.
// Renewals stop, the lease runs out, and the re-login fails: the alert's
// condition (expiry closer than a fifth of the lease) holds and the login
// errors count.
func TestTransitMetricsVaultUnreachableAtRenewal(t *testing.T) {
	srv := vaulttest.Start(t)
	key := createKey(t, srv, "metrics-dead")
	root := rootClient(t, srv)
	putPolicy(t, root, "tokenproxy-metrics-dead", transitPolicy(key))
	roleID := appRole(t, root, "metrics-dead", "tokenproxy-metrics-dead", map[string]any{"token_ttl": "4s", "token_max_ttl": "1h"})
	reg := prometheus.NewRegistry()
	cfg := appRoleConfig(srv, key, roleID, writeFile(t, "secret_id", newSecretID(t, root, "metrics-dead")), false)
	cfg.CACert = srv.CACertFile
	cfg.Timeout = 2 * time.Second
	newTransit(t, cfg, vault.WithMetrics(vault.NewTransitMetrics(reg)))

	srv.Kill()
	waitMetric(t, reg, "tokenproxy_vault_logins_total", "error", func(v float64) bool { return v >= 1 })
	exp := metricValue(t, reg, "tokenproxy_vault_token_expiry_timestamp_seconds", "")
	ttl := metricValue(t, reg, "tokenproxy_vault_token_ttl_seconds", "")
	if left := exp - float64(time.Now().Unix()); ttl <= 0 || left >= 0.2*ttl {
		t.Errorf("with Vault dead: %v s of a %v s lease left; want less than a fifth", left, ttl)
	}
}
