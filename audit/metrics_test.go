package audit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testutilCounter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	l := mustOpen(t, Options{Path: testPath(t), Metrics: m})
	mustAppend(t, l, resolved(1), resolved(2), Record{Event: "custom.event"})
	mustClose(t, l)

	tests := []struct {
		event string
		want  float64
	}{
		{TokenResolved, 2}, {Started, 1}, {Stopped, 1}, {"other", 1}, {TokenCreated, 0},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.records.WithLabelValues(tt.event)); got != tt.want {
			t.Errorf("records{event=%q} = %v, want %v", tt.event, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.appendSeconds); n != 1 {
		t.Errorf("append histogram: %d series", n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}

	var nilMetrics *Metrics // nil must be safe
	nilMetrics.recordWritten(Started)
	nilMetrics.writeError()
	nilMetrics.checkpoint(true)
	nilMetrics.forwardError(1)
	nilMetrics.appended(0)
}
