package console

import (
	"context"
	"log/slog"
	"time"
)

// Cluster is the etcd cluster as this node sees it, for the overview (the
// console imports no store backend: the wiring fills this in).
type Cluster struct {
	Node     string // this node's id (store.etcd.node_id)
	Members  []ClusterMember
	RaftTerm uint64
	Revision int64 // read linearizably by this node; 0 when that failed
	// Healthy: a leader, reached through a linearizable read (a quorum).
	Healthy bool
	// Nodes are the proxy nodes registered in the map.
	Nodes []string
}

// ClusterMember is one etcd member.
type ClusterMember struct {
	Name, Endpoint string
	Reachable      bool
	Leader         bool
	RaftTerm       uint64
	Revision       int64
}

// clusterTimeout bounds the overview's cluster read: a member that is
// down costs its own request timeout, and the page must still come.
const clusterTimeout = 5 * time.Second

// clusterView is the overview's cluster section: this node's freshness,
// and the members when the wiring can read them.
type clusterView struct {
	Fresh   bool
	Status  *Cluster
	ReadErr bool // the members could not be read: see the log
}

func (c *Console) clusterView(ctx context.Context) *clusterView {
	if c.fresh == nil {
		return nil
	}
	v := &clusterView{}
	if err := c.fresh(); err != nil {
		c.log.Warn("console: node not fresh", "event", "console_cluster", "err", err)
	} else {
		v.Fresh = true
	}
	if c.cluster == nil {
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	st, err := c.cluster(ctx)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "console: cluster status", slog.String("event", "console_cluster"), slog.Any("err", err))
		v.ReadErr = true
		return v
	}
	v.Status = &st
	return v
}
