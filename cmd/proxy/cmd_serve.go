package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/tokenproxy/tokenproxy/admin"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
)

var cmdServe = &command{
	name:    "serve",
	summary: "run the inbound and outbound SMTP routes and the admin listener until SIGTERM",
	run:     runServe,
}

var errNotReady = errors.New("not ready")

func runServe(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	a.metricsReg = admin.NewRegistry() // before the engine: the audit trail registers its metrics
	return a.withEngine(ctx, func(cfg *policy.Config, e *engine) error { return serve(ctx, a, cfg, e) })
}

// serve runs until ctx ends (SIGTERM, SIGINT) or a listener fails, then
// drains within smtp.shutdown_timeout.
func serve(ctx context.Context, a *app, cfg *policy.Config, e *engine) error {
	reg := a.metricsReg
	if reg == nil {
		reg = admin.NewRegistry()
	}
	metrics := smtp.NewMetrics(reg)
	rs, err := buildRoutes(cfg, e, a.log, metrics)
	if err != nil {
		return err
	}
	if err := rs.listen(cfg); err != nil {
		rs.closeDownstreams()
		return err
	}
	registerMapMetrics(reg, e.m)
	var ready atomic.Bool
	adminSrv := admin.New(cfg.Admin.Listen, reg, func() error {
		if !ready.Load() {
			return errNotReady
		}
		// A node whose caches may be stale is taken out of rotation: it
		// refuses resolutions, and new senders wait on the cluster.
		return e.m.Fresh()
	}, a.log)
	adminTC, adminCert, err := adminTLS(cfg, a)
	if err != nil {
		rs.in.Close()
		rs.out.Close()
		rs.closeDownstreams()
		return err
	}
	if adminTC != nil {
		adminSrv.ServeTLS(adminTC)
	}
	registerCertMetrics(reg, rs, adminCert)
	peers := clusterPeers(ctx, cfg, e.db, adminCert, a.log) // before the API: it serves the peers too
	svc, stopSweep := startCompliance(a, cfg, e, adminSrv, peers)
	defer stopSweep()
	stopQuarantine, err := startQuarantineSweep(cfg, e, a.log) // quarantine.go
	if err != nil {
		rs.in.Close()
		rs.out.Close()
		rs.closeDownstreams()
		return err
	}
	defer stopQuarantine()
	if err := adminSrv.Start(); err != nil {
		rs.in.Close()
		rs.out.Close()
		rs.closeDownstreams()
		return err
	}
	errc := rs.serve()
	// Before ready: a SIGHUP not yet caught would end the process.
	rl := newReloader(a, cfg, e, rs, reg)
	rl.onReload = func(cfg *policy.Config, changed []string) {
		svc.Reload(ctx, cfg.Compliance, changed)
		if adminCert != nil {
			if err := adminCert.Reload(); err != nil {
				a.log.Error("admin certificate reload failed; keeping the previous one", "event", "reload_failed", "err", err)
			}
			republishPeer(ctx, peers, cfg, e.db, adminCert, a.log)
		}
	}
	stopHUP := a.reloadOnHUP(rl)
	ready.Store(true)
	a.log.Info("tokenproxy serving", "event", "start", "inbound", rs.in.Addr().String(),
		"outbound", rs.out.Addr().String(), "admin", adminSrv.Addr())

	var serveErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down: finishing transactions under way", "event", "shutdown",
			"deadline", rl.current().SMTP.ShutdownTimeout.String())
	case serveErr = <-errc:
		a.log.Error("listener failed; shutting down", "event", "listener_failed", "err", serveErr)
	}
	stopHUP()
	ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), rl.current().SMTP.ShutdownTimeout)
	defer cancel()
	err = rs.shutdown(sctx)
	adminSrv.Shutdown(sctx)
	a.log.Info("stopped", "event", "stop")
	if serveErr != nil {
		return fmt.Errorf("listener: %w", serveErr)
	}
	return err
}

// reloadOnHUP runs rl.reload on each SIGHUP, one at a time: the
// configuration file and the certificates, without dropping a session. stop
// waits for a reload under way.
func (a *app) reloadOnHUP(rl *reloader) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-hup:
				rl.reloadSafely()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-exited
	}
}
