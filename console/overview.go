package console

import (
	"net/http"
	"time"

	"github.com/tokenproxy/tokenproxy/compliance"
)

type overviewBody struct {
	Flows      []routeFlow
	Refusals   []refusal
	TokensHour int64
	TokensDay  int64
	Trail      compliance.TrailStatus
	TrailErr   bool
	Verified   *verifyResult
	Cluster    *clusterView // nil on one node (cluster.go)
	Now        time.Time
	// CheckpointScan is how far back the last checkpoint is looked for.
	CheckpointScan int
}

// routeFlow is one route's charts, the hour beside the day.
type routeFlow struct {
	Route     string
	Hour, Day chart
}

func (c *Console) overview(w http.ResponseWriter, r *request) {
	hour := c.hist.buckets(60, time.Minute)
	day := c.hist.buckets(24, time.Hour)
	b := overviewBody{Refusals: refusals(hour, day), Now: c.now(), CheckpointScan: compliance.MaxCheckpointScan}
	for _, rt := range routes {
		b.Flows = append(b.Flows, routeFlow{Route: rt, Hour: flowChart(rt, "hour", hour, time.Minute),
			Day: flowChart(rt, "day", day, time.Hour)})
	}
	for _, x := range hour {
		b.TokensHour += int64(x.d[keyTokensCreated])
	}
	for _, x := range day {
		b.TokensDay += int64(x.d[keyTokensCreated])
	}
	st, err := c.svc.TrailStatus(r.Context())
	if err != nil {
		c.log.Error("console: trail status", "event", "console_failed", "err", err)
		b.TrailErr = true
	}
	b.Trail = st
	c.mu.Lock()
	b.Verified = c.lastVerify
	c.mu.Unlock()
	b.Cluster = c.clusterView(r.Context())
	c.render(w, http.StatusOK, "overview", c.data(r, "overview", "Overview", b))
}

func (c *Console) principals(w http.ResponseWriter, r *request) {
	c.render(w, http.StatusOK, "principals", c.data(r, "principals", "Principals", c.svc.Principals()))
}
