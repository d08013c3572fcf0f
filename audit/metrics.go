package audit

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the log's Prometheus collectors. A nil *Metrics is valid and
// records nothing. The only label values are event names from the fixed
// set above (anything else is "other") and checkpoint results: never a
// token or a route a caller made up.
type Metrics struct {
	records       *prometheus.CounterVec
	writeErrors   prometheus.Counter
	checkpoints   *prometheus.CounterVec
	forwardErrors prometheus.Counter
	appendSeconds prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg (when reg
// is not nil). Like prometheus.MustRegister it panics on a duplicate
// registration, which is a programming error found at start-up.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_audit_records_total",
			Help: "Audit records written, by event.",
		}, []string{"event"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_audit_write_errors_total",
			Help: "Audit batches that could not be written or synced.",
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_audit_checkpoints_total",
			Help: "Signed checkpoint attempts, by result (ok, error).",
		}, []string{"result"}),
		forwardErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_audit_forward_errors_total",
			Help: "Audit lines the forwarder (syslog) failed to send or dropped.",
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tokenproxy_audit_append_seconds",
			Help:    "Time an Append waited until its records were written (and synced).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}),
	}
	// Create every series up front so dashboards see zeros, not gaps.
	for _, e := range knownEvents {
		m.records.WithLabelValues(e)
	}
	m.records.WithLabelValues("other")
	m.checkpoints.WithLabelValues("ok")
	m.checkpoints.WithLabelValues("error")
	if reg != nil {
		reg.MustRegister(m.records, m.writeErrors, m.checkpoints, m.forwardErrors, m.appendSeconds)
	}
	return m
}

func (m *Metrics) recordWritten(event string) {
	if m == nil {
		return
	}
	if !slices.Contains(knownEvents, event) {
		event = "other"
	}
	m.records.WithLabelValues(event).Inc()
}

func (m *Metrics) writeError() {
	if m != nil {
		m.writeErrors.Inc()
	}
}

func (m *Metrics) checkpoint(ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.checkpoints.WithLabelValues(result).Inc()
}

func (m *Metrics) forwardError(n int) {
	if m != nil {
		m.forwardErrors.Add(float64(n))
	}
}

func (m *Metrics) appended(d time.Duration) {
	if m != nil {
		m.appendSeconds.Observe(d.Seconds())
	}
}
