package smtp

import "github.com/prometheus/client_golang/prometheus"

// The ARC metrics of the inbound route: the chains it verified and the
// seals it added. Labels are results only, never a domain or an address.
var (
	// metricARCResults are RFC 8617's chain results (§4.1.1 cv= values and
	// none), and ours for keys that did not resolve.
	metricARCResults = []string{"none", "pass", "fail", "temperror"}
	// metricARCSeals: a new chain (i=1, the message had none), a set
	// added over the chain as received (i=N+1, with cv=fail over a chain
	// that failed), a new chain after the old
	// sets were removed (rewriting changed what they covered), or no seal
	// (the message was not relayed: 451).
	metricARCSeals = []string{"new", "extended", "replaced", "failed"}
)

// arcCounters are the two ARC counter families.
type arcCounters struct {
	results, seals *prometheus.CounterVec
}

func newARCCounters() arcCounters {
	c := arcCounters{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_arc_results_total",
			Help: "ARC chains verified on the inbound route, by result (none, pass, fail, temperror).",
		}, []string{"result"}),
		seals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_arc_seals_total",
			Help: "ARC seals made on the inbound route, by result (new, extended, replaced, failed).",
		}, []string{"result"}),
	}
	for _, r := range metricARCResults {
		c.results.WithLabelValues(r)
	}
	for _, r := range metricARCSeals {
		c.seals.WithLabelValues(r)
	}
	return c
}

// ARCResult counts one verified chain by its result; anything else counts
// as "other".
func (m *Metrics) ARCResult(result string) {
	if m == nil {
		return
	}
	if result == "" {
		result = "none"
	}
	m.arc.results.WithLabelValues(metricLabel(result, metricARCResults)).Inc()
}

// ARCSeal counts one seal made, or failed: "new", "extended", "replaced"
// or "failed".
func (m *Metrics) ARCSeal(result string) {
	if m == nil {
		return
	}
	m.arc.seals.WithLabelValues(metricLabel(result, metricARCSeals)).Inc()
}

// arcSealResult is the seals label of a seal made at instance i; stripped
// says the old sets were removed.
func arcSealResult(i int, stripped bool) string {
	switch {
	case stripped:
		return "replaced"
	case i > 1:
		return "extended"
	}
	return "new"
}
