package console

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The overview's history: the proxy keeps cumulative counters only
// (Prometheus keeps the history where one runs), so the console samples
// them once a minute into a day-long ring of per-minute counts.
const (
	sampleEvery = time.Minute
	historyLen  = 24 * 60
)

// Metric families the overview reads (smtp.Metrics).
const (
	metricMessages      = "tokenproxy_messages_total"
	metricTokensCreated = "tokenproxy_tokens_created_total"
	metricUnknownTokens = "tokenproxy_unknown_tokens_total"
	keyTokensCreated    = "tokens_created"
	// keyUnknownTokens prefixes the unknown tokens seen per route: a
	// recipient refused 550 5.1.1 is no message, so messages_total has
	// no count of it.
	keyUnknownTokens = "unknown_tokens/"
)

// counts are counter values by key: "route/result", keyTokensCreated,
// or keyUnknownTokens+route.
type counts map[string]float64

// minute is what the counters grew by in the minute ending at.
type minute struct {
	at time.Time
	d  counts
}

type history struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu      sync.Mutex
	last    counts // cumulative, at the last sample
	minutes []minute

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}
}

func newHistory(g prometheus.Gatherer, now func() time.Time) *history {
	h := &history{g: g, now: now, stopc: make(chan struct{}), done: make(chan struct{})}
	h.last = h.read()
	return h
}

// start samples once a minute until stop, calling each (when not nil)
// after every sample: the console's other minute chores ride along.
func (h *history) start(each func()) {
	go func() {
		defer close(h.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				h.tick(each)
			case <-h.stopc:
				return
			}
		}
	}()
}

// tick samples and runs each, recovering a panic (a broken collector)
// so that neither ends the process nor the sampling.
func (h *history) tick(each func()) {
	defer func() { _ = recover() }()
	h.sample()
	if each != nil {
		each()
	}
}

func (h *history) stop() {
	h.stopOnce.Do(func() {
		close(h.stopc)
	})
}

// read gathers the counters the overview shows.
func (h *history) read() counts {
	c := counts{}
	if h.g == nil {
		return c
	}
	fams, _ := h.g.Gather() // a partial gathering still has the families that worked
	for _, f := range fams {
		switch f.GetName() {
		case metricMessages:
			for _, m := range f.GetMetric() {
				c[label(m, "route")+"/"+label(m, "result")] += m.GetCounter().GetValue()
			}
		case metricUnknownTokens:
			for _, m := range f.GetMetric() {
				c[keyUnknownTokens+label(m, "route")] += m.GetCounter().GetValue()
			}
		case metricTokensCreated:
			for _, m := range f.GetMetric() {
				c[keyTokensCreated] += m.GetCounter().GetValue()
			}
		}
	}
	return c
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// since returns cur − last per key; a counter that went down was reset
// (a new registry), so its value is what it grew by.
func since(cur, last counts) counts {
	d := counts{}
	for k, v := range cur {
		if v >= last[k] {
			d[k] = v - last[k]
		} else {
			d[k] = v
		}
	}
	return d
}

// sample closes the current minute.
func (h *history) sample() {
	cur := h.read()
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.minutes = append(h.minutes, minute{at: now, d: since(cur, h.last)})
	if len(h.minutes) > historyLen {
		h.minutes = h.minutes[len(h.minutes)-historyLen:]
	}
	h.last = cur
}

// bucket is the counts of one bar of a chart.
type bucket struct {
	end time.Time
	d   counts
}

// buckets returns n buckets of width each, ending now, oldest first; the
// last one includes the minute under way.
func (h *history) buckets(n int, width time.Duration) []bucket {
	cur := h.read()
	now := h.now()
	h.mu.Lock()
	live := since(cur, h.last)
	ms := append([]minute(nil), h.minutes...)
	h.mu.Unlock()
	out := make([]bucket, n)
	for i := range out {
		out[i] = bucket{end: now.Add(-time.Duration(n-1-i) * width), d: counts{}}
	}
	add := func(at time.Time, d counts) {
		age := now.Sub(at)
		i := n - 1 - int(age/width)
		if i < 0 || i >= n {
			return
		}
		for k, v := range d {
			out[i].d[k] += v
		}
	}
	for _, m := range ms {
		add(m.at, m.d)
	}
	add(now, live)
	return out
}
