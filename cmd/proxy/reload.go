package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// reloader runs SIGHUP: it re-reads the listeners' certificates and the
// configuration file, with the loader used at start (policy.Load), and
// makes both routes run the new configuration for the connections accepted
// from then on; connections already open finish under the one they started
// with (smtp/reload.go). A reload re-reads every file the configuration
// names: CA files and DKIM keys with the certificates. Fields that need a
// restart (policy.RestartOnly) keep their running values; an invalid file
// changes nothing.
type reloader struct {
	a       *app
	e       *engine
	rs      *routes
	results *prometheus.CounterVec
	// onReload, when set, is called after every reload that applied the
	// file, with the changed field paths that took effect (perhaps none):
	// for the audit trail's "config.reloaded" record. Paths only, never
	// values.
	// It runs under the reloader's lock: it gets the new configuration
	// and must not call current.
	onReload func(cfg *policy.Config, changed []string)

	mu  sync.Mutex // one reload at a time; guards cur
	cur *policy.Config
}

// Results of tokenproxy_config_reloads_total.
const (
	reloadOK    = "ok"
	reloadError = "error"
)

// newReloader starts from the configuration running; it registers its
// metric on reg (nil: none).
func newReloader(a *app, cfg *policy.Config, e *engine, rs *routes, reg prometheus.Registerer) *reloader {
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenproxy_config_reloads_total",
		Help: "Reloads (SIGHUP) by result: ok, or error (an invalid configuration or an unreadable file; the running configuration stays).",
	}, []string{"result"})
	results.WithLabelValues(reloadOK)
	results.WithLabelValues(reloadError)
	if reg != nil {
		reg.MustRegister(results)
	}
	return &reloader{a: a, e: e, rs: rs, results: results, cur: cfg}
}

// current is the configuration running.
func (rl *reloader) current() *policy.Config {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.cur
}

// reload runs one reload and counts it. Everything is logged; the error
// is for tests.
func (rl *reloader) reload() error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	err := rl.applyFile()
	if cerr := rl.rs.reloadCerts(); cerr != nil {
		rl.a.log.Error("certificate reload failed; keeping the previous ones", "event", "reload_failed", "err", cerr)
		err = errors.Join(err, cerr)
	}
	result := reloadOK
	if err != nil {
		result = reloadError
	}
	rl.results.WithLabelValues(result).Inc()
	return err
}

// reloadSafely is reload for the signal loop: a panic is logged, and the
// proxy goes on with the configuration it has.
func (rl *reloader) reloadSafely() {
	defer func() {
		if p := recover(); p != nil {
			rl.a.log.Error("panic in a reload; keeping the running configuration", "event", "panic", "panic", fmt.Sprint(p))
			rl.results.WithLabelValues(reloadError).Inc()
		}
	}()
	rl.reload()
}

// applyFile loads the configuration file and applies what changed.
func (rl *reloader) applyFile() error {
	log := rl.a.log
	next, err := rl.a.loadConfig()
	if err != nil {
		rl.logInvalid(err)
		return err
	}
	cfg, applied, restart, err := policy.Reload(rl.cur, next)
	if err != nil {
		rl.logInvalid(err)
		return err
	}
	if len(restart) > 0 {
		log.Warn("configuration change needs a restart; keeping the running value", "event", "reload_needs_restart",
			"fields", restart)
	}
	if err := rl.rs.reload(cfg, rl.e, log); err != nil {
		log.Error("configuration reload failed; keeping the running configuration", "event", "reload_failed", "err", err)
		return err
	}
	rl.cur = cfg
	rl.a.logLevel.Set(logLevel(cfg.Log))
	log.Info("configuration reloaded", "event", "reload", "changed", applied)
	if rl.onReload != nil {
		rl.onReload(cfg, applied)
	}
	return nil
}

// logInvalid logs why a file was refused: the field and the reason
// without the values it quotes (a secret in the wrong field, an address).
func (rl *reloader) logInvalid(err error) {
	const msg = "configuration invalid; keeping the running configuration (proxy check-config shows the whole reason)"
	var fe *policy.FieldError
	if errors.As(err, &fe) {
		rl.a.log.Error(msg, "event", "reload_invalid", "source", fe.Source, "field", fe.Field, "reason", fe.SafeReason())
		return
	}
	rl.a.log.Error(msg, "event", "reload_invalid", "err", err)
}

// reload builds both routes' configurations from cfg and makes them
// current; the downstreams they replace drain (their transactions under
// way finish, their idle connections close). On error nothing changed,
// unless a shutdown began between the two routes.
func (rs *routes) reload(cfg *policy.Config, e *engine, log *slog.Logger) error {
	d := newRouteDeps(cfg, e, log)
	d.metrics = rs.metrics
	in, out, err := d.options()
	if err != nil {
		return err
	}
	downs := []*downstream.Pool{in.Route.Downstream, out.Route.Downstream}
	closeFrom := func(i int) {
		for _, d := range downs[i:] {
			d.Close()
		}
	}
	inCfg, err := smtp.NewInboundConfig(in)
	if err != nil {
		closeFrom(0)
		return fmt.Errorf("inbound: %w", err)
	}
	outCfg, err := smtp.NewOutboundConfig(out)
	if err != nil {
		closeFrom(0)
		return fmt.Errorf("outbound: %w", err)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, sw := range []struct {
		r *smtp.Route
		c *smtp.RouteConfig
	}{{rs.in, inCfg}, {rs.out, outCfg}} {
		if err := sw.r.Reload(sw.c); err != nil {
			closeFrom(i)
			return err
		}
		old := rs.downs[i]
		rs.downs[i] = downs[i]
		old.Drain()
	}
	for i, l := range []policy.ConnLimits{cfg.InboundConnLimits(), cfg.OutboundConnLimits()} {
		rs.limiters[i].SetLimits(l.MaxConnections, l.MaxConnectionsPerIP)
	}
	return nil
}
