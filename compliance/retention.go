package compliance

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// StartRetention starts the sweeper that expires tokens idle for longer
// than r.TokenMaxIdle, at once and then every r.SweepInterval, as actor
// system:retention. The values are read here; a restart applies new
// ones. stop ends the sweeper and waits for a sweep under way.
//
// In a cluster the sweeper runs on one node at a time: when the map is a
// tokenize.Elector (a map on a shared store), each node's sweeper waits
// until its node leads "retention", sweeps at once and on every tick
// while it leads, and waits again when the leadership is lost. Two nodes
// sweeping together would race to expire the same tokens.
func (s *Service) StartRetention(r policy.Retention) (stop func()) {
	ctx, cancel := context.WithCancel(audit.WithActor(context.Background(), "system:retention"))
	done := make(chan struct{})
	go s.sweep(ctx, r, done)
	return func() {
		cancel()
		<-done
	}
}

func (s *Service) sweep(ctx context.Context, r policy.Retention, done chan struct{}) {
	defer close(done)
	if r.TokenMaxIdle <= 0 {
		return
	}
	e, ok := s.m.(tokenize.Elector)
	if !ok {
		s.sweepEvery(ctx, r)
		return
	}
	for ctx.Err() == nil {
		led, err := e.Lead(ctx, retentionTask)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("retention election failed; retrying", "event", "retention_failed", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		s.sweepEvery(led, r)
		if ctx.Err() == nil {
			s.log.Warn("retention leadership lost; another node sweeps", "event", "retention_leader_lost")
		}
	}
}

// retentionTask names the sweeper's election among the cluster's nodes.
const retentionTask = "retention"

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sweepEvery sweeps at once and then every r.SweepInterval until ctx ends.
func (s *Service) sweepEvery(ctx context.Context, r policy.Retention) {
	tick := time.NewTicker(r.SweepInterval)
	defer tick.Stop()
	for {
		s.sweepOnce(ctx, r.TokenMaxIdle)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweepOnce runs one sweep. A panic in it is logged and the sweeper goes
// on at the next tick: a bad record must not end retention for good
// (STYLE.md: recover in every goroutine we start).
func (s *Service) sweepOnce(ctx context.Context, idle time.Duration) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("retention sweep panicked; will retry at the next tick", "event", "panic",
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	// The token.expired records are committed with each batch through
	// the map's outbox (MapAudit), as system:retention (ctx's actor).
	n, err := s.m.Expire(ctx, time.Now().Add(-idle), map[string]string{"max_idle": idle.String()})
	if err != nil && ctx.Err() == nil {
		s.log.Error("retention sweep failed; will retry", "event", "retention_failed", "expired", n, "err", err)
	} else if n > 0 {
		s.log.Info("tokens expired", "event", "retention", "expired", n)
	}
}
