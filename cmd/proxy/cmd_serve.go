package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

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
	return a.withEngine(ctx, func(cfg *policy.Config, e *engine) error { return serve(ctx, a, cfg, e) })
}

// serve runs until ctx ends (SIGTERM, SIGINT) or a listener fails, then
// drains within smtp.shutdown_timeout.
func serve(ctx context.Context, a *app, cfg *policy.Config, e *engine) error {
	reg := newRegistry()
	metrics := smtp.NewMetrics(reg)
	rs, err := buildRoutes(cfg, e, a.log, metrics)
	if err != nil {
		return err
	}
	if err := rs.listen(cfg); err != nil {
		rs.closeDownstreams()
		return err
	}
	var ready atomic.Bool
	admin := newAdminServer(cfg.Admin.Listen, reg, func() error {
		if !ready.Load() {
			return errNotReady
		}
		return nil
	}, a.log)
	if err := admin.Start(); err != nil {
		rs.in.Close()
		rs.out.Close()
		rs.closeDownstreams()
		return err
	}
	errc := rs.serve()
	ready.Store(true)
	a.log.Info("tokenproxy serving", "event", "start", "inbound", rs.in.Addr().String(),
		"outbound", rs.out.Addr().String(), "admin", admin.Addr())

	stopHUP := a.reloadOnHUP(rs)
	defer stopHUP()
	var serveErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down: finishing transactions under way", "event", "shutdown",
			"deadline", cfg.SMTP.ShutdownTimeout.String())
	case serveErr = <-errc:
		a.log.Error("listener failed; shutting down", "event", "listener_failed", "err", serveErr)
	}
	ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.SMTP.ShutdownTimeout)
	defer cancel()
	err = rs.shutdown(sctx)
	admin.Shutdown(sctx)
	a.log.Info("stopped", "event", "stop")
	if serveErr != nil {
		return fmt.Errorf("listener: %w", serveErr)
	}
	return err
}

// reloadOnHUP reloads the listeners' certificates on SIGHUP, so renewed
// certificates take effect without dropping sessions.
func (a *app) reloadOnHUP(rs *routes) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				if err := rs.reloadCerts(); err != nil {
					a.log.Error("certificate reload failed; keeping the previous ones", "event", "reload_failed", "err", err)
				} else {
					a.log.Info("certificates reloaded", "event", "reload")
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
