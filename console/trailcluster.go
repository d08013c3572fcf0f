package console

import (
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// clusterTrail is a page of every node's records (compliance
// AuditPageCluster): a record links to its full view, read from its
// node's trail.
type clusterTrail struct {
	Rows    []compliance.PagedRecord
	Missing []compliance.TrailState
	Older   template.URL
}

// clusterTrailPage lists every node's records matching the filter, newest
// first; the page's position on each node is the "at" parameter,
// node:seq per node (seqs are per trail).
func (c *Console) clusterTrailPage(w http.ResponseWriter, r *request, f trailFilter, q audit.Query, b trailBody) {
	at, ok := parseAt(r.URL.Query()["at"])
	if !ok {
		b.Error = "at must be node:record pairs"
		c.render(w, http.StatusBadRequest, "audit", c.data(r, "audit", "Audit trail", b))
		return
	}
	pg, err := c.svc.AuditPageCluster(r.Context(), q, at, trailPageSize)
	if err != nil {
		c.fail(w, r, "audit_read", err)
		return
	}
	ct := &clusterTrail{Rows: pg.Records}
	for _, st := range pg.Trails {
		if st.Missing != "" {
			ct.Missing = append(ct.Missing, st)
		}
	}
	if pg.Next != nil {
		ct.Older = f.urlAt("/console/audit", pg.Next)
	}
	b.Cluster = ct
	c.render(w, http.StatusOK, "audit", c.data(r, "audit", "Audit trail", b))
}

// parseAt reads the per-node positions (node:seq); a node id may hold a
// colon, the seq follows the last one. What it refuses is not echoed.
func parseAt(vals []string) (compliance.PageCursor, bool) {
	at := compliance.PageCursor{}
	for _, v := range vals {
		i := strings.LastIndexByte(v, ':')
		if i < 1 || strings.Contains(v[:i], "@") { // a node id, never an address
			return nil, false
		}
		seq, err := strconv.ParseUint(v[i+1:], 10, 64)
		if err != nil {
			return nil, false
		}
		at[v[:i]] = seq
	}
	return at, true
}

// urlAt is url with the per-node positions of the next page.
func (f trailFilter) urlAt(path string, at compliance.PageCursor) template.URL {
	v := url.Values{}
	for _, node := range slices.Sorted(maps.Keys(at)) {
		v.Add("at", node+":"+strconv.FormatUint(at[node], 10))
	}
	base := string(f.url(path, 0))
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return template.URL(base + sep + v.Encode())
}
