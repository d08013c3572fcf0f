package main

import (
	"context"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/tokenproxy/tokenproxy/console"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

// consoleCluster reads the etcd cluster for the console's overview, as
// `proxy cluster status` does (etcdstore.ReadStatus: its own short-lived
// client, each member asked within the request timeout, nothing written).
func consoleCluster(cfg *policy.Config) (func(context.Context) (console.Cluster, error), error) {
	opts, err := etcdOptions(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (console.Cluster, error) {
		st, err := etcdstore.ReadStatus(ctx, opts)
		if err != nil {
			return console.Cluster{}, err
		}
		return clusterOf(nodeIDOf(opts), st), nil
	}, nil
}

// nodeIDOf is the node id the store uses: the configured one, or the
// host name it defaults to.
func nodeIDOf(opts etcdstore.Options) string {
	if opts.NodeID != "" {
		return opts.NodeID
	}
	host, _ := os.Hostname() // as etcdstore defaults it
	return host
}

func clusterOf(node string, st etcdstore.Status) console.Cluster {
	c := console.Cluster{Node: node, RaftTerm: st.RaftTerm, Revision: st.Revision, Healthy: st.Healthy(),
		Nodes: slices.Sorted(maps.Keys(st.Nodes))}
	for _, m := range st.Members {
		c.Members = append(c.Members, console.ClusterMember{Name: m.Name, Endpoint: m.Endpoint, Reachable: m.Reachable,
			Leader: m.Reachable && m.ID == st.Leader, RaftTerm: m.RaftTerm, Revision: m.Revision})
	}
	slices.SortFunc(c.Members, func(a, b console.ClusterMember) int { return strings.Compare(a.Name, b.Name) })
	return c
}
