package smtp

import (
	"crypto/tls"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values. Every label of every metric takes its value from one of these
// fixed sets; anything else is recorded as metricLabelOther, so a caller bug
// (or a peer-chosen string reaching a label) cannot grow the number of series.
// Tokens, addresses, IPs and session IDs are never labels (STYLE.md §7).
const metricLabelOther = "other"

var (
	metricRoutes  = []string{"inbound", "outbound"}
	metricResults = []string{
		"relayed", "rejected", "tempfail", "refused_leak", "refused_unscannable",
		"unknown_token", "bare_line_ending", "line_too_long", "too_large", "refused_dmarc",
		"refused_new_tokens", "rate_new_tokens", "nul_in_data", "busy",
	}
	metricTLSVersions    = []string{"1.2", "1.3"}
	metricRefuseReasons  = []string{"total", "per_ip"}
	metricReplyClasses   = []string{"2xx", "4xx", "5xx"}
	metricAuthResults    = []string{"success", "failure", "locked_out", "busy"}
	metricLockoutScopes  = []string{"ip", "user"}
	metricDownstreamStgs = []string{"connect", "mail", "rcpt", "data"}
	metricTokenLimits    = []string{limitPerMessage, limitPerIP, limitTotal}
)

// relayLatencyBuckets cover 0.5 ms (a local sink) to 30 s (the downstream
// client's default per-command timeout), roughly 1-2.5-5 per decade.
var relayLatencyBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// messageSizeBuckets are 1 KiB, 2 KiB, … 64 MiB (17 buckets).
var messageSizeBuckets = prometheus.ExponentialBuckets(1024, 2, 17)

// Metrics records the proxy's Prometheus metrics. All methods are safe for
// concurrent use and are no-ops on a nil *Metrics, so sessions and tests that
// do not care about metrics pass nil.
type Metrics struct {
	messages         *prometheus.CounterVec
	relayLatency     *prometheus.HistogramVec
	messageSize      *prometheus.HistogramVec
	tokensCreated    prometheus.Counter
	unknownTokens    *prometheus.CounterVec
	tlsHandshakes    *prometheus.CounterVec
	connsOpen        *prometheus.GaugeVec
	connsTotal       *prometheus.CounterVec
	connsRefused     *prometheus.CounterVec
	replies          *prometheus.CounterVec
	authAttempts     *prometheus.CounterVec
	authLockouts     *prometheus.CounterVec
	downstreamErrors *prometheus.CounterVec
	tokenLimits      *prometheus.CounterVec
	downstreamHosts  *prometheus.CounterVec // metrics_downstream.go
	arc              arcCounters            // metrics_arc.go
}

// NewMetrics creates the metrics and registers them on reg. A nil reg leaves
// them unregistered (they still count, nobody scrapes them). Like
// prometheus.MustRegister it panics if reg already holds metrics of the same
// names: that is a wiring bug found at start-up, not a run-time condition.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_messages_total",
			Help: "Finished mail transactions by route and result.",
		}, []string{"route", "result"}),
		relayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokenproxy_relay_latency_seconds",
			Help:    "Time from the end of DATA input to the downstream server's final reply.",
			Buckets: relayLatencyBuckets,
		}, []string{"route"}),
		messageSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokenproxy_message_size_bytes",
			Help:    "Size of received messages in bytes.",
			Buckets: messageSizeBuckets,
		}, []string{"route"}),
		tokensCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenproxy_tokens_created_total",
			Help: "Tokens newly created for customer addresses.",
		}),
		unknownTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_unknown_tokens_total",
			Help: "Tokens seen in mail that the token store does not know.",
		}, []string{"route"}),
		tlsHandshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_tls_handshakes_total",
			Help: "Completed TLS handshakes with SMTP clients by route and TLS version.",
		}, []string{"route", "version"}),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tokenproxy_connections_open",
			Help: "SMTP client connections currently open.",
		}, []string{"route"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_connections_total",
			Help: "SMTP client connections accepted.",
		}, []string{"route"}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_connections_refused_total",
			Help: "SMTP client connections refused by a connection limit (total or per IP).",
		}, []string{"reason"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_replies_total",
			Help: "Replies to MAIL, RCPT and DATA by route and reply class.",
		}, []string{"route", "class"}),
		authAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_auth_attempts_total",
			Help: "SMTP AUTH attempts by result.",
		}, []string{"result"}),
		authLockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_auth_lockouts_total",
			Help: "SMTP AUTH lockouts started, by scope (client ip or account).",
		}, []string{"scope"}),
		downstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_downstream_errors_total",
			Help: "Errors talking to the downstream server by route and stage.",
		}, []string{"route", "stage"}),
		tokenLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenproxy_new_token_limits_total",
			Help: "Inbound messages refused for the new tokens they would create, by limit (per_message, per_ip, total).",
		}, []string{"limit"}),
	}
	m.downstreamHosts = newDownstreamHostCounter()
	m.arc = newARCCounters()
	m.initSeries()
	if reg != nil {
		reg.MustRegister(
			m.messages, m.relayLatency, m.messageSize, m.tokensCreated, m.unknownTokens,
			m.tlsHandshakes, m.connsOpen, m.connsTotal, m.connsRefused, m.replies,
			m.authAttempts, m.authLockouts, m.downstreamErrors, m.tokenLimits, m.downstreamHosts,
			m.arc.results, m.arc.seals,
		)
	}
	return m
}

// initSeries creates every known label combination at zero, so that rates
// and alerts on, say, result="refused_leak" work before the first such
// message. "other" is not pre-created: it appears only if a caller has a bug.
func (m *Metrics) initSeries() {
	for _, route := range metricRoutes {
		for _, result := range metricResults {
			m.messages.WithLabelValues(route, result)
		}
		m.relayLatency.WithLabelValues(route)
		m.messageSize.WithLabelValues(route)
		m.unknownTokens.WithLabelValues(route)
		for _, v := range metricTLSVersions {
			m.tlsHandshakes.WithLabelValues(route, v)
		}
		m.connsOpen.WithLabelValues(route)
		m.connsTotal.WithLabelValues(route)
		for _, class := range metricReplyClasses {
			m.replies.WithLabelValues(route, class)
		}
		for _, stage := range metricDownstreamStgs {
			m.downstreamErrors.WithLabelValues(route, stage)
		}
	}
	for _, reason := range metricRefuseReasons {
		m.connsRefused.WithLabelValues(reason)
	}
	for _, result := range metricAuthResults {
		m.authAttempts.WithLabelValues(result)
	}
	for _, scope := range metricLockoutScopes {
		m.authLockouts.WithLabelValues(scope)
	}
	for _, limit := range metricTokenLimits {
		m.tokenLimits.WithLabelValues(limit)
	}
}

// Message counts a finished transaction. route is "inbound" or "outbound";
// result is one of "relayed", "rejected", "tempfail", "refused_leak",
// "refused_unscannable", "unknown_token", "bare_line_ending", "line_too_long", "too_large",
// "refused_dmarc", "refused_new_tokens", "rate_new_tokens", "nul_in_data",
// "busy". Any other value is counted as "other".
func (m *Metrics) Message(route, result string) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(metricLabel(route, metricRoutes), metricLabel(result, metricResults)).Inc()
}

// RelayLatency observes the time from DATA's end of input to the
// downstream's final reply.
func (m *Metrics) RelayLatency(route string, d time.Duration) {
	if m == nil {
		return
	}
	m.relayLatency.WithLabelValues(metricLabel(route, metricRoutes)).Observe(max(d, 0).Seconds())
}

// MessageSize observes the size of a received message in bytes.
func (m *Metrics) MessageSize(route string, bytes int64) {
	if m == nil {
		return
	}
	m.messageSize.WithLabelValues(metricLabel(route, metricRoutes)).Observe(float64(max(bytes, 0)))
}

// TokensCreated adds n newly created tokens. n <= 0 is ignored (a counter
// never goes down, and Add panics on a negative value).
func (m *Metrics) TokensCreated(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.tokensCreated.Add(float64(n))
}

// UnknownTokens adds n tokens seen on route that the store does not know.
// n <= 0 is ignored.
func (m *Metrics) UnknownTokens(route string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.unknownTokens.WithLabelValues(metricLabel(route, metricRoutes)).Add(float64(n))
}

// TLSHandshake counts a completed handshake with a client on route;
// version is tls.ConnectionState.Version, labelled "1.2", "1.3" or "other".
func (m *Metrics) TLSHandshake(route string, version uint16) {
	if m == nil {
		return
	}
	m.tlsHandshakes.WithLabelValues(metricLabel(route, metricRoutes), tlsVersionLabel(version)).Inc()
}

// ConnectionOpened counts an accepted client connection and raises the
// open-connections gauge. Pair every call with ConnectionClosed.
func (m *Metrics) ConnectionOpened(route string) {
	if m == nil {
		return
	}
	route = metricLabel(route, metricRoutes)
	m.connsTotal.WithLabelValues(route).Inc()
	m.connsOpen.WithLabelValues(route).Inc()
}

// ConnectionClosed lowers the open-connections gauge.
func (m *Metrics) ConnectionClosed(route string) {
	if m == nil {
		return
	}
	m.connsOpen.WithLabelValues(metricLabel(route, metricRoutes)).Dec()
}

// ConnectionRefused counts a connection refused by a limit; reason is
// "total" or "per_ip".
func (m *Metrics) ConnectionRefused(reason string) {
	if m == nil {
		return
	}
	m.connsRefused.WithLabelValues(metricLabel(reason, metricRefuseReasons)).Inc()
}

// Reply counts a reply to MAIL, RCPT or DATA by its class "2xx", "4xx" or
// "5xx". Other codes (such as DATA's intermediate 354) count as "other".
func (m *Metrics) Reply(route string, code int) {
	if m == nil {
		return
	}
	m.replies.WithLabelValues(metricLabel(route, metricRoutes), replyClassLabel(code)).Inc()
}

// AuthAttempt counts an AUTH attempt; result is "success" or "failure".
func (m *Metrics) AuthAttempt(result string) {
	if m == nil {
		return
	}
	m.authAttempts.WithLabelValues(metricLabel(result, metricAuthResults)).Inc()
}

// AuthLockout counts a lockout started; scope is "ip" or "user".
func (m *Metrics) AuthLockout(scope string) {
	if m == nil {
		return
	}
	m.authLockouts.WithLabelValues(metricLabel(scope, metricLockoutScopes)).Inc()
}

// DownstreamError counts a failure talking to the downstream server; stage
// is "connect", "mail", "rcpt" or "data".
func (m *Metrics) DownstreamError(route, stage string) {
	if m == nil {
		return
	}
	m.downstreamErrors.WithLabelValues(metricLabel(route, metricRoutes), metricLabel(stage, metricDownstreamStgs)).Inc()
}

// metricLabel returns v if it is one of allowed, else "other".
func metricLabel(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return metricLabelOther
}

func tlsVersionLabel(version uint16) string {
	switch version {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return metricLabelOther
}

func replyClassLabel(code int) string {
	switch code / 100 {
	case 2:
		return "2xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return metricLabelOther
}

// NewTokenLimit counts an inbound message refused by a limit on new
// tokens: limitPerMessage (rewrite.limits.max_new_tokens), limitPerIP or
// limitTotal (inbound.new_token_rate).
func (m *Metrics) NewTokenLimit(limit string) {
	if m == nil {
		return
	}
	m.tokenLimits.WithLabelValues(metricLabel(limit, metricTokenLimits)).Inc()
}
