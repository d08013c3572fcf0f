package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
)

// adminTLS returns the admin listener's TLS configuration, or nil for
// plain HTTP. The compliance API needs HTTPS, so enabling it turns TLS on
// (a self-signed certificate in data_dir/tls when none is configured).
func adminTLS(cfg *policy.Config, a *app) (*tls.Config, *smtp.CertStore, error) {
	t := cfg.Admin.TLS
	if !cfg.Compliance.Enabled && t.CertFile == "" {
		return nil, nil, nil
	}
	host, _, _ := net.SplitHostPort(cfg.Admin.Listen)
	cert, err := smtp.LoadCert(t.CertFile, t.KeyFile, cfg.DataDir, []string{host}, a.log)
	if err != nil {
		return nil, nil, fmt.Errorf("admin.tls: %w", err)
	}
	tc := smtp.ServerTLSConfig(cert)
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("admin.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("admin.tls.client_ca_file %s: no PEM certificate", t.ClientCAFile)
		}
		// Probes and bearer-token clients need no certificate; a
		// certificate that is sent must verify.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, cert, nil
}

// complianceRuntime is the compliance side of serve: the API's principals
// and guard (which a reload updates) and the retention sweeper.
type complianceRuntime struct {
	who  *principals
	svc  *complianceService
	stop context.CancelFunc
	done chan struct{}
}

// startCompliance mounts the compliance API on the admin server (when
// enabled) and starts the retention sweeper (when configured).
func startCompliance(a *app, cfg *policy.Config, e *engine, admin *adminServer) *complianceRuntime {
	rt := &complianceRuntime{who: newPrincipals(cfg.Compliance.Principals), svc: e.compliance(cfg, a.log), done: make(chan struct{})}
	if cfg.Compliance.Enabled {
		api := &complianceAPI{svc: rt.svc, who: rt.who}
		api.register(admin.mux)
	}
	ctx, cancel := context.WithCancel(audit.WithActor(context.Background(), "system:retention"))
	rt.stop = cancel
	go rt.sweep(ctx, a, cfg, e)
	return rt
}

// reloaded applies a reloaded configuration's principals and limit, and
// audits the reload.
func (rt *complianceRuntime) reloaded(ctx context.Context, cfg *policy.Config, changed []string) {
	rt.who.set(cfg.Compliance.Principals)
	rt.svc.guard.setMax(cfg.Compliance.MaxResolutionsPerHour)
	fields := strings.Join(changed, ",")
	if len(fields) > 900 {
		fields = fields[:900] + "…"
	}
	err := rt.svc.record(audit.WithActor(ctx, "system:sighup"), audit.Record{Event: audit.ConfigReloaded,
		Outcome: "ok", Count: len(changed), Detail: map[string]string{"changed": fields}})
	if err != nil {
		rt.svc.log.Error("configuration reload not audited", "event", "audit_failed", "err", err)
	}
}

// sweep expires idle tokens every retention.sweep_interval. The interval
// and the idle time are read at start; a restart applies new values.
func (rt *complianceRuntime) sweep(ctx context.Context, a *app, cfg *policy.Config, e *engine) {
	defer close(rt.done)
	idle := cfg.Retention.TokenMaxIdle
	if idle <= 0 {
		return
	}
	tick := time.NewTicker(cfg.Retention.SweepInterval)
	defer tick.Stop()
	for {
		n, err := e.m.Expire(ctx, time.Now().Add(-idle), func(ctx context.Context, tokens []string) error {
			return rt.svc.record(ctx, audit.Record{Event: audit.TokenExpired, Tokens: tokens, Count: len(tokens), Outcome: "ok",
				Detail: map[string]string{"max_idle": idle.String()}})
		})
		if err != nil && ctx.Err() == nil {
			a.log.Error("retention sweep failed; will retry", "event", "retention_failed", "expired", n, "err", err)
		} else if n > 0 {
			a.log.Info("tokens expired", "event", "retention", "expired", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (rt *complianceRuntime) close() {
	rt.stop()
	<-rt.done
}
