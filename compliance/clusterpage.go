package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"

	"github.com/tokenproxy/tokenproxy/audit"
)

// This file pages through every node's records at once, newest first,
// for the console's trail view on a cluster node: each node's page is
// read newest first (this node's from its file, the others' through
// their peer page endpoint), and the pages are merged. Where the next
// page starts is a position per node, since seqs are per trail.

const (
	peerPagePath = "/v1/cluster/audit/page"
	// maxPeerPage bounds what one peer page request may ask for.
	maxPeerPage = 1000
)

// PageCursor is where a cluster's page continues on each node: the next
// page holds that node's records with a seq below its entry (none: from
// its newest record).
type PageCursor map[string]uint64

// PagedRecord is a record of a cluster's page, with the node whose trail
// holds it.
type PagedRecord struct {
	audit.Record
	Node string
}

// ClusterPage is one page of every node's records, newest first.
type ClusterPage struct {
	Records []PagedRecord
	// Next is where the older page starts; nil when there is none.
	Next PageCursor
	// Trails names each node read, and why a node's records are
	// missing from the page when they are.
	Trails []TrailState
}

// AuditPageCluster returns up to limit records matching q from every
// node's trail, newest first, from the positions at (audited audit.read,
// as AuditPage). On a single node it is AuditPage with the node "".
func (s *Service) AuditPageCluster(ctx context.Context, q audit.Query, at PageCursor, limit int) (ClusterPage, error) {
	if s.cluster == nil {
		recs, err := s.AuditPage(ctx, q, at[""], limit+1)
		if err != nil {
			return ClusterPage{}, err
		}
		return mergePages(map[string][]audit.Record{"": recs}, []string{""}, at, limit, []TrailState{{}}), nil
	}
	if err := s.record(ctx, audit.Record{Event: audit.AuditRead, Outcome: "ok"}); err != nil {
		return ClusterPage{}, err
	}
	self := s.cluster.Node
	// One more than a page from each node: whether an older page exists.
	own, err := s.pageOf(ctx, q, at[self], limit+1)
	if err != nil {
		return ClusterPage{}, err
	}
	pages, order, states := map[string][]audit.Record{self: own}, []string{self}, []TrailState{{Node: self}}
	live, absent, err := s.cluster.others(ctx)
	if err != nil {
		s.log.Warn("the cluster's nodes could not be listed; paging this node's trail only", "event", "peer_trail_unavailable", "err", err)
		states = append(states, TrailState{Node: clusterUnknown, Missing: "the cluster's node list could not be read from the store (see the log)"})
	}
	actor := audit.ActorFrom(ctx)
	for _, t := range live {
		recs, err := s.readPeerPage(ctx, t, q, at[t.node], limit+1, actor)
		if err != nil {
			s.log.Warn("a node's audit trail is missing from a cluster page", "event", "peer_trail_unavailable", "node", t.node, "err", err)
			states = append(states, TrailState{Node: t.node, Missing: "its node did not answer (see the log)"})
			continue
		}
		pages[t.node], order = recs, append(order, t.node)
		states = append(states, TrailState{Node: t.node})
	}
	for _, node := range absent {
		states = append(states, TrailState{Node: node, Missing: "no live node serves its trail"})
	}
	return mergePages(pages, order, at, limit, states), nil
}

// mergePages merges the nodes' pages (each newest first) into one of up
// to limit records, newest first (the merge's order, reversed: by commit
// revision or time), never reordering one node's records, and says where
// each node's next page starts. A node not read keeps its position.
func mergePages(pages map[string][]audit.Record, order []string, at PageCursor, limit int, states []TrailState) ClusterPage {
	pos := map[string]int{}
	var out []PagedRecord
	for len(out) < limit {
		pick, found := "", false
		for _, node := range order {
			if pos[node] >= len(pages[node]) {
				continue
			}
			if !found || before(pages[pick][pos[pick]], pages[node][pos[node]]) {
				pick, found = node, true
			}
		}
		if !found {
			break
		}
		out = append(out, PagedRecord{Record: pages[pick][pos[pick]], Node: pick})
		pos[pick]++
	}
	next, more := maps.Clone(at), false
	if next == nil {
		next = PageCursor{}
	}
	for _, node := range order {
		l := pages[node]
		switch {
		case pos[node] > 0:
			next[node] = l[pos[node]-1].Seq
		case len(l) > 0:
			// Nothing of this node on the page: its next page starts at
			// its newest record read now, not at records written since.
			next[node] = l[0].Seq + 1
		}
		more = more || pos[node] < len(l)
	}
	for _, r := range out {
		for i := range states {
			if states[i].Node == r.Node {
				states[i].Records++
			}
		}
	}
	p := ClusterPage{Records: out, Trails: states}
	if more {
		p.Next = next
	}
	return p
}

// readPeerPage reads a peer's page: up to limit of its records matching q
// with a seq below before (0: from its newest), newest first.
func (s *Service) readPeerPage(ctx context.Context, t peerTarget, q audit.Query, before uint64, limit int, actor string) ([]audit.Record, error) {
	q.Limit = limit
	query := encodeQuery(q)
	if before > 0 {
		query += "&before=" + strconv.FormatUint(before, 10)
	}
	rc, err := s.getPeer(ctx, t, peerPagePath, query, actor)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []audit.Record
	dec := json.NewDecoder(rc)
	for len(out) <= limit {
		var r audit.Record
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%w: node %s: %w", errPeerUnavailable, t.node, err)
		}
		out = append(out, r)
	}
	return nil, fmt.Errorf("%w: node %s answered more than %d records", errPeerUnavailable, t.node, limit)
}

// peerPage answers another node with a page of this node's records,
// newest first (audited here too, as peerRecords).
func (api *httpAPI) peerPage(w http.ResponseWriter, r *http.Request, forActor string) {
	q, err := parseQuery(r)
	var before uint64
	if err == nil && r.URL.Query().Get("before") != "" {
		before, err = strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	}
	if err == nil && (q.Limit < 1 || q.Limit > maxPeerPage) {
		err = fmt.Errorf("limit must be 1 to %d", maxPeerPage)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad page request")
		return
	}
	limit := q.Limit
	q.Limit = 0
	ctx := r.Context()
	rec := audit.Record{Event: audit.AuditRead, Outcome: "ok", Detail: map[string]string{"for": forActor, "via": "cluster"}}
	if err := api.svc.record(ctx, rec); err != nil {
		api.fail(w, ctx, err)
		return
	}
	recs, err := api.svc.pageOf(ctx, q, before, limit)
	if err != nil {
		api.fail(w, ctx, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	for _, rec := range recs {
		if err := enc.Encode(rec); err != nil {
			api.svc.log.Error("peer audit page failed", "event", "audit_read_failed", "err", err)
			return
		}
	}
}

// AuditRecordOn returns the record seq of node's trail (audited
// audit.read): this node's from its file, another's through its page
// endpoint. A node not among the live ones is errPeerUnavailable (a
// 503: its trail cannot be read now); no such record, nil and false.
func (s *Service) AuditRecordOn(ctx context.Context, node string, seq uint64) (audit.Record, bool, error) {
	if s.cluster == nil || node == s.cluster.Node {
		recs, err := s.AuditPage(ctx, audit.Query{FromSeq: seq}, seq+1, 1)
		if err != nil || len(recs) == 0 || recs[0].Seq != seq {
			return audit.Record{}, false, err
		}
		return recs[0], true, nil
	}
	if err := s.record(ctx, audit.Record{Event: audit.AuditRead, Outcome: "ok"}); err != nil {
		return audit.Record{}, false, err
	}
	live, _, err := s.cluster.others(ctx)
	if err != nil {
		return audit.Record{}, false, err
	}
	for _, t := range live {
		if t.node != node {
			continue
		}
		recs, err := s.readPeerPage(ctx, t, audit.Query{FromSeq: seq}, seq+1, 1, audit.ActorFrom(ctx))
		if err != nil || len(recs) == 0 || recs[0].Seq != seq {
			return audit.Record{}, false, err
		}
		return recs[0], true, nil
	}
	return audit.Record{}, false, fmt.Errorf("%w: node %s is not live", errPeerUnavailable, node)
}
