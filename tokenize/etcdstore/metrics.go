package etcdstore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operations of the latency histogram: the only values of its label.
const (
	opView     = "view"     // a View, all its reads
	opUpdate   = "update"   // an Update, retries included
	opCommit   = "commit"   // one Txn of the group commit
	opRevision = "revision" // the freshness check's linearizable read
)

// requestBuckets cover a loopback quorum round (about 1 ms) to a request
// that ran into RequestTimeout twice.
var requestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// metrics are the store's Prometheus collectors. Labels take only the op
// names above: never a key, which holds a token.
type metrics struct {
	latency    *prometheus.HistogramVec
	restarts   prometheus.Counter
	leader     *prometheus.GaugeVec // by task: 1 while this node leads it (elect.go)
	takeovers  prometheus.Counter   // dead nodes' outboxes this node claimed (takeover.go)
	takenOver  prometheus.Counter   // their records this node delivered
	collectors []prometheus.Collector
	reg        prometheus.Registerer
}

// newMetrics creates the collectors and registers them on reg (nil: they
// count for nobody). Like prometheus.MustRegister it panics on a duplicate
// registration, a wiring bug found at start-up.
func newMetrics(s *Store, reg prometheus.Registerer) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokenproxy_etcd_request_duration_seconds",
			Help:    "Duration of the token map's etcd operations: view, update (retries included), commit (one Txn), revision (the freshness check's read).",
			Buckets: requestBuckets,
		}, []string{"op"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_etcd_watch_restarts_total",
			Help: "Times the watch that invalidates the caches broke and was reopened.",
		}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokenproxy_cluster_leader",
			Help: "1 while this node leads a task of the cluster (retention: the expiry sweeps, reencrypt: record re-encryption), 0 while another node does or none is elected yet.",
		}, []string{"task"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_outbox_takeovers_total",
			Help: "Audit outboxes of dead nodes this node took over (claimed after their lease ended) to deliver their records to its own trail.",
		}),
		takenOver: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_outbox_takeover_records_total",
			Help: "Records of dead nodes' outboxes this node delivered to its trail, counted when a taken-over outbox is empty and handed back.",
		}),
		reg: reg,
	}
	for _, op := range []string{opView, opUpdate, opCommit, opRevision} {
		m.latency.WithLabelValues(op)
	}
	fresh := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenproxy_store_fresh",
		Help: "1 while this node's caches are confirmed coherent with the cluster within store.etcd.freshness, else 0.",
	}, func() float64 {
		if s.Fresh() == nil {
			return 1
		}
		return 0
	})
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenproxy_store_freshness_age_seconds",
		Help: "Seconds since the last confirmed freshness check was sent (since the store opened, if none was).",
	}, func() float64 { return s.freshnessAge().Seconds() })
	m.collectors = []prometheus.Collector{m.latency, m.restarts, m.leader, m.takeovers, m.takenOver, fresh, age}
	if cert := clientCertGauge(s.opts.TLS); cert != nil {
		m.collectors = append(m.collectors, cert)
	}
	if reg != nil {
		reg.MustRegister(m.collectors...)
	}
	return m
}

// observe records the duration of one op begun at begin.
func (m *metrics) observe(op string, begin time.Time) {
	m.latency.WithLabelValues(op).Observe(time.Since(begin).Seconds())
}

// unregister removes the collectors, so that the store can be opened
// again on the same registry.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
