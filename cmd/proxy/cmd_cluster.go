package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

// errClusterUnhealthy: no leader, or no quorum behind it: exit 1.
var errClusterUnhealthy = errors.New("the cluster is not healthy: no leader, or no quorum for a linearizable read")

var cmdClusterStatus = &command{
	name:    "cluster status",
	summary: "the etcd cluster as this node sees it: members, leader, raft term, revision, registered nodes (exit 1 without a leader)",
	run:     runClusterStatus,
}

func runClusterStatus(ctx context.Context, a *app, args []string) error {
	if err := nArgs(args, 0, ""); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Store.Backend != "etcd" {
		fmt.Fprintf(a.stdout, "store:      single node (bbolt, %s)\n", dbPath(cfg))
		return nil
	}
	opts, err := etcdOptions(cfg)
	if err != nil {
		return err
	}
	opts.Logger = a.log
	st, err := etcdstore.ReadStatus(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "store:      %s\nnode:       %s\n", describeStore(cfg, "etcd"), nodeID(opts.NodeID))
	printClusterStatus(a.stdout, st)
	if !st.Healthy() {
		return errClusterUnhealthy
	}
	return nil
}

// nodeID is the configured node id, or the host name it defaults to.
func nodeID(configured string) string {
	if configured != "" {
		return configured
	}
	return "(host name)"
}

func printClusterStatus(w io.Writer, st etcdstore.Status) {
	fmt.Fprintf(w, "members:    %d\n", len(st.Members))
	leader := "none"
	slices.SortFunc(st.Members, func(a, b etcdstore.MemberStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range st.Members {
		role := ""
		if m.ID == st.Leader {
			role, leader = " leader", fmt.Sprintf("%s (%016x)", m.Name, m.ID)
		}
		if !m.Reachable {
			fmt.Fprintf(w, "  %016x %-12s %-28s unreachable: %v\n", m.ID, m.Name, m.Endpoint, m.Err)
			continue
		}
		fmt.Fprintf(w, "  %016x %-12s %-28s term %d revision %d%s\n", m.ID, m.Name, m.Endpoint, m.RaftTerm, m.Revision, role)
	}
	if st.Leader != 0 && st.Err != nil {
		// A leader cut off from its quorum still calls itself leader
		// until its election timeout: the failed read is what counts.
		leader += ", but no quorum answered"
	}
	fmt.Fprintf(w, "leader:     %s\nraft term:  %d\n", leader, st.RaftTerm)
	if st.Err != nil {
		fmt.Fprintf(w, "revision:   unknown: linearizable read failed: %v\n", st.Err)
	} else {
		fmt.Fprintf(w, "revision:   %d (linearizable read by this node)\n", st.Revision)
	}
	printNodes(w, st.Nodes)
	printHeads(w, st.Heads)
	fmt.Fprintf(w, "result:     %s\n", map[bool]string{true: "healthy", false: "NOT HEALTHY"}[st.Healthy()])
}

// printNodes lists the map's node registrations as stored.
func printNodes(w io.Writer, nodes map[string][]byte) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "nodes:      none registered")
		return
	}
	fmt.Fprintf(w, "nodes:      %d registered\n", len(nodes))
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "  %-28s %s\n", id, printable(nodes[id]))
	}
}

// printable shows a stored value whose format another part of the code
// owns: as text when it is text, else its size.
func printable(v []byte) string {
	s := string(v)
	if len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Sprintf("(%d bytes)", len(v))
	}
	return s
}

// printHeads lists the nodes' published audit heads.
func printHeads(w io.Writer, heads map[string][]byte) {
	if len(heads) == 0 {
		fmt.Fprintln(w, "audit heads: none published")
		return
	}
	fmt.Fprintf(w, "audit heads: %d published\n", len(heads))
	for _, id := range slices.Sorted(maps.Keys(heads)) {
		var h audit.SignedHead
		if err := json.Unmarshal(heads[id], &h); err != nil {
			fmt.Fprintf(w, "  %-28s unreadable: %v\n", id, err)
			continue
		}
		fmt.Fprintf(w, "  %-28s seq %d at %s\n", id, h.Seq, h.Time.UTC().Format(time.RFC3339))
	}
}
