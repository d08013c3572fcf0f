package smtp

import "github.com/prometheus/client_golang/prometheus"

// metricDownstreamHostResults are the outcomes downstream.Config.Observe
// reports per host: a connection set up or why not, a failover to the next
// host, a message delivered or a transaction failed.
var metricDownstreamHostResults = []string{
	"connected", "delivered", "failed", "failover",
	"unreachable", "timeout", "reply", "tls", "certificate", "no_starttls", "auth", "protocol",
}

func newDownstreamHostCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenproxy_downstream_host_events_total",
		Help: "Downstream connection attempts, failovers and transactions per route and host (host:port as configured or found in MX, never an address of mail).",
	}, []string{"route", "host", "result"})
}

// DownstreamHost counts one event of a downstream host. host is the
// host:port the configuration or the MX look-up named: a bounded set
// chosen by the operator, never a mail address or a client's input.
func (m *Metrics) DownstreamHost(route, host, result string) {
	if m == nil {
		return
	}
	m.downstreamHosts.WithLabelValues(metricLabel(route, metricRoutes), host,
		metricLabel(result, metricDownstreamHostResults)).Inc()
}

// DownstreamObserver is a downstream.Config.Observe for route.
func (m *Metrics) DownstreamObserver(route string) func(host, result string) {
	if m == nil {
		return nil
	}
	return func(host, result string) { m.DownstreamHost(route, host, result) }
}
