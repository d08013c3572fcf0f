package vault

import (
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
)

// TransitMetrics are the Vault login's Prometheus collectors. Mail never
// waits for Vault after start (the data keys are in memory), so an outage
// shows nowhere in mail: only here, as renewals that stop and logins that
// fail, before the token expires and the next restart or key command
// cannot log in. A nil *TransitMetrics records nothing.
type TransitMetrics struct {
	expiry   prometheus.Gauge
	ttl      prometheus.Gauge
	renewals prometheus.Counter
	logins   *prometheus.CounterVec
}

// Results of tokenproxy_vault_logins_total.
const (
	loginOK    = "ok"
	loginError = "error"
)

// NewTransitMetrics creates the collectors and registers them on reg (nil:
// unregistered). Like prometheus.MustRegister it panics on a duplicate
// registration, a wiring bug found at start-up.
func NewTransitMetrics(reg prometheus.Registerer) *TransitMetrics {
	m := &TransitMetrics{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokenproxy_vault_token_expiry_timestamp_seconds",
			Help: "Unix time the Vault token's lease ends, as of the last login or renewal (0: the token does not expire).",
		}),
		ttl: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokenproxy_vault_token_ttl_seconds",
			Help: "Lease the last login or renewal granted the Vault token, in seconds (0: the token does not expire).",
		}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_vault_token_renewals_total",
			Help: "Successful renewals of the Vault token (a failed one is retried until the lease ends; it shows as an expiry drawing near).",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_vault_logins_total",
			Help: "Vault logins (at start and AppRole re-logins when a lease ends) by result: ok, error.",
		}, []string{"result"}),
	}
	m.logins.WithLabelValues(loginOK)
	m.logins.WithLabelValues(loginError)
	if reg != nil {
		reg.MustRegister(m.expiry, m.ttl, m.renewals, m.logins)
	}
	return m
}

// WithMetrics records logins, renewals and the token's lease on m.
func WithMetrics(m *TransitMetrics) TransitOption {
	return func(o *transitOptions) { o.metrics = m }
}

// loggedIn records a login's result and, on success, its lease.
func (m *TransitMetrics) loggedIn(s *api.Secret, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.logins.WithLabelValues(loginError).Inc()
		return
	}
	m.logins.WithLabelValues(loginOK).Inc()
	m.lease(s, time.Now())
}

// renewed records a renewal the lifetime watcher reported.
func (m *TransitMetrics) renewed(r *api.RenewOutput) {
	if m == nil || r == nil {
		return
	}
	m.renewals.Inc()
	m.lease(r.Secret, r.RenewedAt)
}

// lease sets the gauges from a login's or renewal's token lease.
func (m *TransitMetrics) lease(s *api.Secret, at time.Time) {
	if s == nil || s.Auth == nil {
		return
	}
	d := s.Auth.LeaseDuration
	m.ttl.Set(float64(d))
	if d == 0 {
		m.expiry.Set(0)
		return
	}
	m.expiry.Set(float64(at.Add(time.Duration(d) * time.Second).Unix()))
}
