package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/tokenproxy/tokenproxy/admin"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
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

// The compliance service reaches the map and its database through these
// seams only.
var (
	_ compliance.TokenMap = (*tokenize.Map)(nil)
	_ compliance.Backuper = (*boltstore.Store)(nil)
)

// compliance returns the compliance service over the engine.
// cluster, on a cluster node, merges the other nodes' trails into
// exports and listings (nil: this node's trail only).
func (e *engine) compliance(cfg *policy.Config, log *slog.Logger, cluster *compliance.Cluster) *compliance.Service {
	var q compliance.Quarantine // a nil *quarantine.Store would not be a nil interface
	if s, err := e.quarantine(cfg); err == nil {
		q = s
	} else {
		log.Error("quarantine unavailable to the compliance API", "event", "quarantine_open", "err", err)
	}
	return compliance.New(compliance.Options{Map: e.m, DB: backuper(e.db), Trail: e.trail, Keys: e.auditKeys,
		Config: cfg.Compliance, Log: log, Quarantine: q, Cluster: cluster})
}

// startCompliance mounts the compliance API on the admin server (when
// enabled) and starts the retention sweeper (when configured); stop ends
// the sweeper.
func startCompliance(a *app, cfg *policy.Config, e *engine, srv *admin.Server, cluster *compliance.Cluster) (svc *compliance.Service, stop func()) {
	svc = e.compliance(cfg, a.log, cluster)
	if cfg.Compliance.Enabled {
		svc.Register(srv)
	}
	stopConsole, err := startConsole(a, cfg, e, srv, svc)
	if err != nil { // the embedded templates do not parse: a build defect
		a.log.Error("compliance console not started", "event", "console_failed", "err", err)
		stopConsole = func() {}
	}
	stopSweep := svc.StartRetention(cfg.Retention)
	return svc, func() {
		stopConsole()
		stopSweep()
		svc.Close() // the refused calls of the current window reach the trail
	}
}
