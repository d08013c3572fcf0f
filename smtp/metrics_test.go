package smtp

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return NewMetrics(reg), reg
}

func TestMetricsNilIsNoOp(t *testing.T) {
	var m *Metrics
	// None of these may panic.
	m.Message("inbound", "relayed")
	m.RelayLatency("inbound", time.Second)
	m.MessageSize("inbound", 1024)
	m.TokensCreated(3)
	m.UnknownTokens("outbound", 1)
	m.TLSHandshake("inbound", tls.VersionTLS13)
	m.ConnectionOpened("inbound")
	m.ConnectionClosed("inbound")
	m.ConnectionRefused("per_ip")
	m.Reply("outbound", 250)
	m.AuthAttempt("success")
	m.DownstreamError("outbound", "connect")
	m.ARCResult("pass")
	m.ARCSeal("new")
}

func TestMetricsNilRegisterer(t *testing.T) {
	m := NewMetrics(nil)
	m.TokensCreated(2)
	if got := testutil.ToFloat64(m.tokensCreated); got != 2 {
		t.Errorf("tokens created = %v, want 2", got)
	}
}

func TestMetricsDoubleRegistrationPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	defer func() {
		if recover() == nil {
			t.Error("second NewMetrics on the same registry did not panic")
		}
	}()
	NewMetrics(reg)
}

func TestMetricsAllNamesPrefixedAndDocumented(t *testing.T) {
	_, reg := newTestMetrics(t)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 16 {
		t.Errorf("gathered %d metric families, want 16", len(families))
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "tokenproxy_") {
			t.Errorf("metric %q lacks the tokenproxy_ prefix", f.GetName())
		}
		if f.GetHelp() == "" {
			t.Errorf("metric %q has no help text", f.GetName())
		}
	}
}

func TestMetricsMessage(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.Message("inbound", "relayed")
	m.Message("inbound", "relayed")
	m.Message("outbound", "refused_leak")

	tests := []struct {
		route, result string
		want          float64
	}{
		{"inbound", "relayed", 2},
		{"outbound", "refused_leak", 1},
		{"outbound", "relayed", 0},
		{"inbound", "too_large", 0},
	}
	for _, tt := range tests {
		got := testutil.ToFloat64(m.messages.WithLabelValues(tt.route, tt.result))
		if got != tt.want {
			t.Errorf("messages{%s,%s} = %v, want %v", tt.route, tt.result, got, tt.want)
		}
	}
}

// TestMetricsKnownSeriesPreCreated checks that every known label combination
// exists at zero before any event, so alerts on rare results work.
func TestMetricsKnownSeriesPreCreated(t *testing.T) {
	m, _ := newTestMetrics(t)
	tests := []struct {
		name string
		c    prometheus.Collector
		want int
	}{
		{"messages", m.messages, 2 * 14},
		{"relay latency", m.relayLatency, 2},
		{"message size", m.messageSize, 2},
		{"tokens created", m.tokensCreated, 1},
		{"unknown tokens", m.unknownTokens, 2},
		{"tls handshakes", m.tlsHandshakes, 2 * 2},
		{"connections open", m.connsOpen, 2},
		{"connections total", m.connsTotal, 2},
		{"connections refused", m.connsRefused, 2},
		{"replies", m.replies, 2 * 3},
		{"auth attempts", m.authAttempts, 4},
		{"auth lockouts", m.authLockouts, 2},
		{"downstream errors", m.downstreamErrors, 2 * 4},
		{"new token limits", m.tokenLimits, 3},
	}
	for _, tt := range tests {
		if got := testutil.CollectAndCount(tt.c); got != tt.want {
			t.Errorf("%s: %d series, want %d", tt.name, got, tt.want)
		}
	}
}

// TestMetricsUnknownLabelsBecomeOther feeds every method values outside its
// fixed sets, many times over, and checks that each metric gains at most the
// "other" series: a caller bug must not explode cardinality.
func TestMetricsUnknownLabelsBecomeOther(t *testing.T) {
	m, reg := newTestMetrics(t)
	before := seriesCount(t, reg)

	for i := range 50 {
		junk := "junk-" + strings.Repeat("x", i)
		m.Message(junk, junk)
		m.Message("inbound", "customer@example.com")
		m.RelayLatency(junk, time.Millisecond)
		m.MessageSize(junk, 10)
		m.UnknownTokens(junk, 1)
		m.TLSHandshake(junk, uint16(i))
		m.ConnectionOpened(junk)
		m.ConnectionClosed(junk)
		m.ConnectionRefused(junk)
		m.Reply(junk, i*37)
		m.AuthAttempt(junk)
		m.DownstreamError(junk, junk)
		m.NewTokenLimit(junk)
		m.ARCResult(junk)
		m.ARCSeal(junk)
	}

	// New series, at most: messages {other,other} and {inbound,other};
	// relay latency, size, unknown tokens, connections open, connections
	// total: {other} each; tls {other,other}; refused {other}; replies
	// {other,other}, {other,2xx}, {other,4xx}, {other,5xx}; auth {other};
	// downstream {other,other}; new token limits {other}; ARC results and
	// seals {other} each.
	const maxNew = 2 + 5 + 1 + 1 + 4 + 1 + 1 + 1 + 1 + 2
	if after := seriesCount(t, reg); after-before > maxNew {
		t.Errorf("series grew from %d to %d, more than %d new", before, after, maxNew)
	}

	if got := testutil.ToFloat64(m.messages.WithLabelValues("other", "other")); got != 50 {
		t.Errorf(`messages{other,other} = %v, want 50`, got)
	}
	if got := testutil.ToFloat64(m.messages.WithLabelValues("inbound", "other")); got != 50 {
		t.Errorf(`messages{inbound,other} = %v, want 50`, got)
	}
	if got := testutil.ToFloat64(m.authAttempts.WithLabelValues("other")); got != 50 {
		t.Errorf(`auth{other} = %v, want 50`, got)
	}
	if got := testutil.ToFloat64(m.connsOpen.WithLabelValues("other")); got != 0 {
		t.Errorf(`connections open{other} = %v, want 0`, got)
	}
	assertLabelValuesWithin(t, reg)
}

// assertLabelValuesWithin checks every gathered label value against the fixed
// sets plus "other".
func assertLabelValuesWithin(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	allowed := map[string][]string{
		"route":   metricRoutes,
		"result":  slices.Concat(metricResults, metricAuthResults, metricARCResults, metricARCSeals),
		"version": metricTLSVersions,
		"reason":  metricRefuseReasons,
		"scope":   metricLockoutScopes,
		"class":   metricReplyClasses,
		"stage":   metricDownstreamStgs,
		"limit":   metricTokenLimits,
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, lp := range metric.GetLabel() {
				set, ok := allowed[lp.GetName()]
				if !ok {
					t.Errorf("%s: unexpected label %q", f.GetName(), lp.GetName())
					continue
				}
				if v := lp.GetValue(); v != metricLabelOther && !slices.Contains(set, v) {
					t.Errorf("%s: label %s=%q outside the fixed set", f.GetName(), lp.GetName(), v)
				}
			}
		}
	}
}

func seriesCount(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		n += len(f.GetMetric())
	}
	return n
}

func TestMetricsTLSHandshakeVersion(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.TLSHandshake("inbound", tls.VersionTLS13)
	m.TLSHandshake("inbound", tls.VersionTLS13)
	m.TLSHandshake("outbound", tls.VersionTLS12)
	m.TLSHandshake("outbound", tls.VersionTLS10)

	want := `
# HELP tokenproxy_tls_handshakes_total Completed TLS handshakes with SMTP clients by route and TLS version.
# TYPE tokenproxy_tls_handshakes_total counter
tokenproxy_tls_handshakes_total{route="inbound",version="1.2"} 0
tokenproxy_tls_handshakes_total{route="inbound",version="1.3"} 2
tokenproxy_tls_handshakes_total{route="outbound",version="1.2"} 1
tokenproxy_tls_handshakes_total{route="outbound",version="1.3"} 0
tokenproxy_tls_handshakes_total{route="outbound",version="other"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tokenproxy_tls_handshakes_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsTokensCreated(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.TokensCreated(3)
	m.TokensCreated(0)
	m.TokensCreated(-5) // ignored: a counter never goes down, and Add would panic
	m.TokensCreated(1)

	want := `
# HELP tokenproxy_tokens_created_total Tokens newly created for customer addresses.
# TYPE tokenproxy_tokens_created_total counter
tokenproxy_tokens_created_total 4
`
	if err := testutil.CollectAndCompare(m.tokensCreated, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestMetricsUnknownTokens(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.UnknownTokens("inbound", 2)
	m.UnknownTokens("inbound", -1)
	m.UnknownTokens("outbound", 1)
	if got := testutil.ToFloat64(m.unknownTokens.WithLabelValues("inbound")); got != 2 {
		t.Errorf("unknown tokens inbound = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.unknownTokens.WithLabelValues("outbound")); got != 1 {
		t.Errorf("unknown tokens outbound = %v, want 1", got)
	}
}

func TestMetricsConnections(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.ConnectionOpened("inbound")
	m.ConnectionOpened("inbound")
	m.ConnectionOpened("outbound")
	m.ConnectionClosed("inbound")
	m.ConnectionRefused("per_ip")
	m.ConnectionRefused("total")
	m.ConnectionRefused("per_ip")

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"open inbound", m.connsOpen.WithLabelValues("inbound"), 1},
		{"open outbound", m.connsOpen.WithLabelValues("outbound"), 1},
		{"total inbound", m.connsTotal.WithLabelValues("inbound"), 2},
		{"total outbound", m.connsTotal.WithLabelValues("outbound"), 1},
		{"refused per_ip", m.connsRefused.WithLabelValues("per_ip"), 2},
		{"refused total", m.connsRefused.WithLabelValues("total"), 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMetricsReplyClass(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{250, "2xx"}, {251, "2xx"}, {354, "other"}, {421, "4xx"}, {451, "4xx"},
		{550, "5xx"}, {554, "5xx"}, {0, "other"}, {-250, "other"}, {99, "other"}, {2500, "other"},
	}
	for _, tt := range tests {
		if got := replyClassLabel(tt.code); got != tt.want {
			t.Errorf("replyClassLabel(%d) = %q, want %q", tt.code, got, tt.want)
		}
	}

	m, _ := newTestMetrics(t)
	m.Reply("inbound", 250)
	m.Reply("inbound", 550)
	m.Reply("inbound", 554)
	m.Reply("outbound", 451)
	if got := testutil.ToFloat64(m.replies.WithLabelValues("inbound", "5xx")); got != 2 {
		t.Errorf("replies{inbound,5xx} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.replies.WithLabelValues("outbound", "4xx")); got != 1 {
		t.Errorf("replies{outbound,4xx} = %v, want 1", got)
	}
}

func TestMetricsAuthAndDownstream(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.AuthAttempt("success")
	m.AuthAttempt("failure")
	m.AuthAttempt("failure")
	m.DownstreamError("outbound", "rcpt")
	if got := testutil.ToFloat64(m.authAttempts.WithLabelValues("failure")); got != 2 {
		t.Errorf("auth failure = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.downstreamErrors.WithLabelValues("outbound", "rcpt")); got != 1 {
		t.Errorf("downstream errors{outbound,rcpt} = %v, want 1", got)
	}
}

func TestMetricsHistograms(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.RelayLatency("inbound", 3*time.Millisecond)
	m.RelayLatency("inbound", -time.Second) // clamped to 0
	m.MessageSize("outbound", 5000)
	m.MessageSize("outbound", 100<<20) // above the last bucket: +Inf

	if n := len(relayLatencyBuckets); relayLatencyBuckets[0] != 0.0005 || relayLatencyBuckets[n-1] != 30 {
		t.Errorf("relay latency buckets span %v … %v, want 0.0005 … 30", relayLatencyBuckets[0], relayLatencyBuckets[n-1])
	}
	if n := len(messageSizeBuckets); messageSizeBuckets[0] != 1024 || messageSizeBuckets[n-1] != 64<<20 {
		t.Errorf("message size buckets span %v … %v, want 1 KiB … 64 MiB", messageSizeBuckets[0], messageSizeBuckets[n-1])
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			h := metric.GetHistogram()
			if h == nil || len(metric.GetLabel()) != 1 {
				continue
			}
			key := f.GetName() + "/" + metric.GetLabel()[0].GetValue()
			switch key {
			case "tokenproxy_relay_latency_seconds/inbound":
				found[key] = true
				if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.003 {
					t.Errorf("%s: count %d sum %v, want 2 and 0.003", key, h.GetSampleCount(), h.GetSampleSum())
				}
			case "tokenproxy_message_size_bytes/outbound":
				found[key] = true
				if h.GetSampleCount() != 2 || h.GetSampleSum() != 5000+100<<20 {
					t.Errorf("%s: count %d sum %v", key, h.GetSampleCount(), h.GetSampleSum())
				}
			}
		}
	}
	if len(found) != 2 {
		t.Errorf("found histograms %v, want both", found)
	}
}

func TestMetricsConcurrent(t *testing.T) {
	m, _ := newTestMetrics(t)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				m.ConnectionOpened("inbound")
				m.Message("inbound", "relayed")
				m.TokensCreated(1)
				m.ConnectionClosed("inbound")
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := testutil.ToFloat64(m.tokensCreated); got != 800 {
		t.Errorf("tokens created = %v, want 800", got)
	}
	if got := testutil.ToFloat64(m.connsOpen.WithLabelValues("inbound")); got != 0 {
		t.Errorf("connections open = %v, want 0", got)
	}
}
