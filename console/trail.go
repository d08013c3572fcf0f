package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// trailPageSize is how many records one page of the trail shows.
const trailPageSize = 50

// events are the filter's choices, in the order shown.
var events = []string{
	audit.TokenCreated, audit.TokenResolved, audit.TokenExpired, audit.TokenErased,
	audit.ComplianceResolve, audit.ComplianceLookup, audit.ComplianceExport, audit.ComplianceErase,
	audit.ComplianceRefused, audit.AuditRead, audit.AuditVerify, audit.KeysRotated, audit.ConfigReloaded,
	audit.Backup, audit.Restore, audit.StoreMigrated, audit.ErasuresReplayed, audit.Checkpoint,
	audit.Recovered, audit.Started, audit.Stopped,
}

// trailFilter is the audit page's filter, as the form sends it (GET: it
// holds tokens, actors and times, never an address).
type trailFilter struct {
	Event, Actor, Token, Since, Until string
	Before                            uint64
}

const formTime = "2006-01-02T15:04" // <input type=datetime-local>, read as UTC

func parseFilter(v url.Values) (trailFilter, audit.Query, error) {
	f := trailFilter{Event: v.Get("event"), Actor: strings.TrimSpace(v.Get("actor")),
		Token: strings.TrimSpace(v.Get("token")), Since: v.Get("since"), Until: v.Get("until")}
	q := audit.Query{Actor: f.Actor, Token: f.Token}
	if f.Event != "" {
		q.Events = []string{f.Event}
	}
	var err error
	if s := v.Get("before"); s != "" {
		if f.Before, err = strconv.ParseUint(s, 10, 64); err != nil {
			return f, q, errors.New("before must be a record number")
		}
	}
	for _, t := range []struct {
		name, val string
		dst       *time.Time
	}{{"since", f.Since, &q.Since}, {"until", f.Until, &q.Until}} {
		if t.val == "" {
			continue
		}
		if *t.dst, err = time.Parse(formTime, t.val); err != nil {
			if *t.dst, err = time.Parse(time.RFC3339, t.val); err != nil {
				return f, q, fmt.Errorf("%s must be a date and time (UTC)", t.name)
			}
		}
	}
	return f, q, nil
}

// url is path with the filter as its query (the next page, the export).
// The values are encoded here (url.Values), so the template may take the
// whole as a URL.
func (f trailFilter) url(path string, before uint64) template.URL {
	v := url.Values{}
	for k, x := range map[string]string{"event": f.Event, "actor": f.Actor, "token": f.Token, "since": f.Since, "until": f.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatUint(before, 10))
	}
	if len(v) == 0 {
		return template.URL(path)
	}
	return template.URL(path + "?" + v.Encode())
}

type trailBody struct {
	Filter  trailFilter
	Events  []string
	Records []audit.Record
	Older   template.URL // the next (older) page, "" at the end
	Export  template.URL // the export of this view
	Error   string
	// Cluster is the page of every node's records on a cluster node
	// (trailcluster.go); Records is then empty.
	Cluster *clusterTrail
}

// trail lists the records matching the filter, newest first (audited
// audit.read, as the API's listing).
func (c *Console) trail(w http.ResponseWriter, r *request) {
	f, q, err := parseFilter(r.URL.Query())
	b := trailBody{Filter: f, Events: events, Export: f.url("/console/audit/export", 0)}
	if err != nil {
		b.Error = err.Error()
		c.render(w, http.StatusBadRequest, "audit", c.data(r, "audit", "Audit trail", b))
		return
	}
	if c.svc.Clustered() {
		c.clusterTrailPage(w, r, f, q, b)
		return
	}
	// One more than a page: whether an older page exists.
	recs, err := c.svc.AuditPage(r.Context(), q, f.Before, trailPageSize+1)
	if err != nil {
		c.fail(w, r, "audit_read", err)
		return
	}
	if len(recs) > trailPageSize {
		recs = recs[:trailPageSize]
		b.Older = f.url("/console/audit", recs[len(recs)-1].Seq)
	}
	b.Records = recs
	c.render(w, http.StatusOK, "audit", c.data(r, "audit", "Audit trail", b))
}

type recordBody struct {
	Record audit.Record
	Node   string // the node whose trail holds it, on a cluster
	Detail []kv
}

type kv struct{ K, V string }

// record shows one record in full (audited audit.read).
func (c *Console) record(w http.ResponseWriter, r *request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.errorPage(w, r.Request, r, http.StatusBadRequest, "A record number is a positive integer.")
		return
	}
	// On a cluster, ?node= names the trail (seqs are per node).
	node := r.URL.Query().Get("node")
	rec, found, err := c.svc.AuditRecordOn(r.Context(), node, seq)
	if err != nil {
		c.fail(w, r, "audit_read", err)
		return
	}
	if !found {
		c.errorPage(w, r.Request, r, http.StatusNotFound, "There is no record with that number.")
		return
	}
	b := recordBody{Record: rec, Node: node}
	for k, v := range rec.Detail {
		b.Detail = append(b.Detail, kv{k, v})
	}
	sortKV(b.Detail)
	title := fmt.Sprintf("Audit record %d", seq)
	if node != "" {
		title += " of node " + node
	}
	c.render(w, http.StatusOK, "record", c.data(r, "audit", title, b))
}

func sortKV(s []kv) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].K < s[j-1].K; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// trailExport downloads the filtered view as JSON lines, each line as
// written (a verifier can still check its hash), through the API's own
// listing (audited audit.read).
func (c *Console) trailExport(w http.ResponseWriter, r *request) {
	_, q, err := parseFilter(r.URL.Query())
	if err != nil {
		c.errorPage(w, r.Request, r, http.StatusBadRequest, err.Error())
		return
	}
	q.FromSeq = 0
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+c.now().UTC().Format("20060102T150405Z")+`.jsonl"`)
	if err := c.svc.ListAudit(r.Context(), q, w); err != nil {
		// Headers may be gone: the download is cut short, which the
		// browser shows as a failed download.
		c.log.Error("console: audit export failed", "event", "audit_read_failed", "err", err)
	}
}
