package etcdstore

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

var _ tokenize.Elector = (*Store)(nil)

// campaignRetry is the pause before campaigning again after a failed
// campaign (etcd unreachable, the lease lost meanwhile).
const campaignRetry = time.Second

// Lead implements tokenize.Elector with an etcd election under
// elect/<task>/ (clientv3/concurrency) on this node's lease: the node
// leads until it gives up (ctx ends, or the store closes and revokes the
// lease) or its lease ends, after which the next candidate leads.
func (s *Store) Lead(ctx context.Context, task string) (context.Context, error) {
	leads := s.metrics.leader.WithLabelValues(task)
	leads.Set(0) // a candidate: the gauge shows the task from the first campaign on
	for {
		if s.closed.Load() {
			return nil, errClosed
		}
		sess := s.session.Load()
		e, err := s.campaign(ctx, sess, task)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil {
			s.log.Info("this node leads a task of the cluster", "event", "leader", "task", task, "node", s.opts.NodeID)
			leads.Set(1)
			return s.leading(ctx, e, sess, task, leads), nil
		}
		s.log.Debug("campaign failed; retrying", "event", "campaign_retry", "task", task, "err", err)
		sleep(ctx, campaignRetry)
	}
}

// campaign waits until sess leads the task's election. It ends early when
// the lease is lost, as a campaign on a lost lease could wait forever.
func (s *Store) campaign(ctx context.Context, sess *concurrency.Session, task string) (*concurrency.Election, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	e := concurrency.NewElection(sess, s.keys.election(task))
	if err := e.Campaign(cctx, s.opts.NodeID); err != nil {
		return nil, err
	}
	// Campaign waits for the keys before ours to go; had ours gone with
	// a lost lease meanwhile, it would return all the same.
	resp, err := e.Leader(cctx)
	if err != nil {
		return nil, err
	}
	if resp.Kvs[0].Lease != int64(sess.Lease()) {
		return nil, concurrency.ErrElectionNotLeader
	}
	return e, nil
}

// leading returns the context of a leadership: it ends when the lease
// ends or ctx ends, and then the election is resigned (if the lease still
// holds), so that the next candidate leads at once.
func (s *Store) leading(ctx context.Context, e *concurrency.Election, sess *concurrency.Session, task string, leads prometheus.Gauge) context.Context {
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		defer leads.Set(0)
		select {
		case <-sess.Done():
			s.log.Warn("leadership lost with the node's lease", "event", "leadership_lost", "task", task, "node", s.opts.NodeID)
		case <-lctx.Done():
			rctx, rcancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
			defer rcancel()
			if err := e.Resign(rctx); err != nil {
				s.log.Debug("resign failed; the lease ends the leadership", "event", "resign_failed", "task", task, "err", err)
			}
		}
	}()
	return lctx
}
