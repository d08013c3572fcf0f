package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// verifyResult is a finished verification, as the overview and the
// progress page show it.
type verifyResult struct {
	At         time.Time
	By         string
	Report     audit.Report
	From, To   uint64 // the range asked for; 0, 0: the whole trail
	InRange    []audit.Problem
	OK         bool
	Failed     bool // it could not run (I/O, keys): see the log
	Problems   int
	ShownRange bool
	// Cluster is every node's verdict on a cluster node (Report is then
	// this node's chain); nil on a single node.
	Cluster *compliance.ClusterReport
}

// job is one verification under way or done.
type job struct {
	id       string
	session  string
	mu       sync.Mutex
	done     int64
	total    int64
	result   *verifyResult
	cancel   context.CancelFunc
	finished chan struct{}
}

func (j *job) progress() (done, total int64, res *verifyResult) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done, j.total, j.result
}

// verifications runs at most one verification per session, in the
// background, so a long trail does not hold a request open.
type verifications struct {
	c    *Console
	mu   sync.Mutex
	jobs map[string]*job // by id
}

func newVerifications(c *Console) *verifications {
	return &verifications{c: c, jobs: map[string]*job{}}
}

// maxVerifyTime bounds one verification.
const maxVerifyTime = 30 * time.Minute

func (v *verifications) start(ctx context.Context, sessionID, actor string, from, to uint64) *job {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, j := range v.jobs {
		// A session's previous job is replaced; a job finished an hour
		// ago is forgotten (its session has ended by then, or moved on).
		_, _, res := j.progress()
		if j.session == sessionID || (res != nil && v.c.now().Sub(res.At) > time.Hour) {
			j.cancel()
			delete(v.jobs, id)
		}
	}
	// The verification outlives the request that started it; it keeps
	// the request's actor for its audit record.
	jctx, cancel := context.WithTimeout(audit.WithActor(context.WithoutCancel(ctx), actor), maxVerifyTime)
	j := &job{id: randomID(), session: sessionID, cancel: cancel, finished: make(chan struct{})}
	v.jobs[j.id] = j
	go v.run(jctx, j, actor, from, to)
	return j
}

func (v *verifications) run(ctx context.Context, j *job, actor string, from, to uint64) {
	defer close(j.finished)
	defer j.cancel()
	res := &verifyResult{By: actor, From: from, To: to}
	defer func() {
		if p := recover(); p != nil {
			v.c.log.Error("console: verification panicked", "event", "console_failed", "panic", p)
			res.Failed = true
		}
		res.At = v.c.now()
		j.mu.Lock()
		j.result = res
		j.mu.Unlock()
		if !res.Failed {
			v.c.mu.Lock()
			v.c.lastVerify = res
			v.c.mu.Unlock()
		}
	}()
	progress := func(done, total int64) {
		j.mu.Lock()
		j.done, j.total = done, total
		j.mu.Unlock()
	}
	var rep audit.Report
	var err error
	if v.c.svc.Clustered() {
		rep, res.Cluster, err = verifyCluster(ctx, v.c.svc, progress)
	} else {
		rep, err = v.c.svc.VerifyAudit(ctx, progress)
	}
	if err != nil {
		v.c.log.Error("console: verification failed", "event", "audit_verify_failed", "actor", actor, "err", err)
		res.Failed = true
		return
	}
	res.Report = rep
	res.Problems = len(rep.Problems) + rep.MoreProblems
	res.OK = rep.OK()
	if from > 0 || to > 0 {
		// A range is judged by the whole chain (each record's prev links
		// it to all before it): the problems inside the range decide.
		res.ShownRange = true
		for _, p := range rep.Problems {
			if p.Seq >= from && (to == 0 || p.Seq <= to) {
				res.InRange = append(res.InRange, p)
			}
		}
		res.OK = len(res.InRange) == 0 && rep.MoreProblems == 0
	}
	if res.Cluster != nil {
		// A range is this node's; the other nodes are judged whole.
		res.OK = res.OK && clusterOK(res.Cluster)
		res.Problems += clusterProblems(res.Cluster)
	}
}

func (v *verifications) get(id, sessionID string) *job {
	v.mu.Lock()
	defer v.mu.Unlock()
	j := v.jobs[id]
	if j == nil || j.session != sessionID {
		return nil
	}
	return j
}

func (v *verifications) stopAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, j := range v.jobs {
		j.cancel()
	}
}

// verifyStart starts a verification of the whole trail or of a range
// (audited audit.verify, as the API's) and shows its progress page.
func (c *Console) verifyStart(w http.ResponseWriter, r *request) {
	from, err1 := parseSeq(r.PostFormValue("from"))
	to, err2 := parseSeq(r.PostFormValue("to"))
	if err1 != nil || err2 != nil || (to > 0 && from > to) {
		c.errorPage(w, r.Request, r, http.StatusBadRequest, "A range is two record numbers, the first not above the second (or leave both empty for the whole trail).")
		return
	}
	j := c.verifier.start(r.Context(), r.s.id, "principal:"+r.p.Name, from, to)
	http.Redirect(w, r.Request, "/console/audit/verify/"+j.id, http.StatusSeeOther)
}

func parseSeq(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

type verifyBody struct {
	ID          string
	Done, Total int64
	Percent     int
	Result      *verifyResult
}

func (c *Console) verifyBody(r *request) (verifyBody, bool) {
	j := c.verifier.get(r.PathValue("id"), r.s.id)
	if j == nil {
		return verifyBody{}, false
	}
	done, total, res := j.progress()
	b := verifyBody{ID: j.id, Done: done, Total: total, Result: res}
	if total > 0 {
		b.Percent = int(done * 100 / total)
	}
	if res != nil {
		b.Percent = 100
	}
	return b, true
}

// verifyPage shows a verification's progress (refreshing itself: by
// script when there is one, by <noscript> meta refresh otherwise) and
// then its result.
func (c *Console) verifyPage(w http.ResponseWriter, r *request) {
	b, ok := c.verifyBody(r)
	if !ok {
		c.errorPage(w, r.Request, r, http.StatusNotFound, "No such verification in this session.")
		return
	}
	c.render(w, http.StatusOK, "verify", c.data(r, "audit", "Verifying the audit trail", b))
}

// verifyStatus is the progress as JSON, for the page's script.
func (c *Console) verifyStatus(w http.ResponseWriter, r *request) {
	b, ok := c.verifyBody(r)
	if !ok {
		http.Error(w, "no such verification", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"done": b.Done, "total": b.Total, "percent": b.Percent, "finished": b.Result != nil})
}
