package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// subjectBody is the Subject page. It never holds the address the officer
// typed: HasSubject says one is held in the session for export and erase.
type subjectBody struct {
	HasSubject bool
	Tokens     []compliance.TokenInfo
	Looked     bool // a lookup just ran
	Resolved   *tokenize.Entry
	Erased     []string
	Wiped      bool
	ErasedNow  bool
	Download   string // id of an export ready for its one fetch
	Receipt    []audit.Record
	Error      string
}

func (c *Console) subjectPage(w http.ResponseWriter, r *request) {
	c.renderSubject(w, r, http.StatusOK, subjectBody{})
}

func (c *Console) renderSubject(w http.ResponseWriter, r *request, code int, b subjectBody) {
	b.HasSubject = c.sessions.subject(r.s) != ""
	c.render(w, code, "subject", c.data(r, "subject", "Subject", b))
}

// subjectLookup finds an address's tokens (audited compliance.lookup) and
// keeps the address in the session for export and erase.
func (c *Console) subjectLookup(w http.ResponseWriter, r *request) {
	addr := strings.TrimSpace(r.PostFormValue("address"))
	ctx, receipt := compliance.WithReceipt(r.Context())
	tokens, err := c.svc.SubjectTokens(ctx, addr, r.PostFormValue("reason"))
	if err != nil {
		c.subjectFail(w, r, receipt, err)
		return
	}
	c.sessions.setSubject(r.s, addr)
	c.renderSubject(w, r, http.StatusOK, subjectBody{Tokens: tokens, Looked: true, Receipt: receipt.Records()})
}

// subjectResolve resolves a token with a reason (audited
// compliance.resolve, bulk guard included).
func (c *Console) subjectResolve(w http.ResponseWriter, r *request) {
	ctx, receipt := compliance.WithReceipt(r.Context())
	e, err := c.svc.Resolve(ctx, strings.TrimSpace(r.PostFormValue("token")), r.PostFormValue("reason"))
	if err != nil {
		c.subjectFail(w, r, receipt, err)
		return
	}
	c.renderSubject(w, r, http.StatusOK, subjectBody{Resolved: &e, Receipt: receipt.Records()})
}

// subjectExport exports the looked-up subject (audited compliance.export):
// the page shows the record, and a link fetches the file once.
func (c *Console) subjectExport(w http.ResponseWriter, r *request) {
	addr := c.sessions.subject(r.s)
	if addr == "" {
		c.renderSubject(w, r, http.StatusBadRequest, subjectBody{Error: "Look up a subject first."})
		return
	}
	ctx, receipt := compliance.WithReceipt(r.Context())
	out, err := c.svc.Export(ctx, addr, r.PostFormValue("reason"))
	if err != nil {
		c.subjectFail(w, r, receipt, err)
		return
	}
	body, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		c.subjectFail(w, r, receipt, err)
		return
	}
	name := "subject-export.json"
	if recs := receipt.Records(); len(recs) > 0 {
		name = fmt.Sprintf("subject-export-%d.json", recs[len(recs)-1].Seq)
	}
	id := c.sessions.addDownload(r.s, download{name: name, body: body})
	c.renderSubject(w, r, http.StatusOK, subjectBody{Download: id, Receipt: receipt.Records()})
}

// subjectDownload hands over an export once; it lives in the session's
// memory only until then.
func (c *Console) subjectDownload(w http.ResponseWriter, r *request) {
	d, ok := c.sessions.takeDownload(r.s, r.PathValue("id"))
	if !ok {
		c.errorPage(w, r.Request, r, http.StatusNotFound, "This export was already downloaded, or its session ended. Export again.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+d.name+`"`)
	w.Write(d.body)
}

// subjectErase erases the looked-up subject (audited compliance.erase)
// once the officer has typed its address again: the confirmation is
// compared with the held address, never shown.
func (c *Console) subjectErase(w http.ResponseWriter, r *request) {
	addr := c.sessions.subject(r.s)
	if addr == "" {
		c.renderSubject(w, r, http.StatusBadRequest, subjectBody{Error: "Look up a subject first."})
		return
	}
	if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm")), addr) {
		c.renderSubject(w, r, http.StatusBadRequest, subjectBody{Error: "The confirmation does not match the subject's address. Nothing was erased."})
		return
	}
	ctx, receipt := compliance.WithReceipt(r.Context())
	erased, err := c.svc.Erase(ctx, addr, r.PostFormValue("reason"))
	if err != nil && !errors.Is(err, tokenize.ErrScrubBusy) {
		c.subjectFail(w, r, receipt, err)
		return
	}
	c.sessions.setSubject(r.s, "")
	c.renderSubject(w, r, http.StatusOK, subjectBody{ErasedNow: true, Erased: erased, Wiped: err == nil, Receipt: receipt.Records()})
}

// subjectFail answers a failed action with the API's status and text, and
// the audit record it produced, if any (a refusal by the bulk guard, a
// "not_found").
func (c *Console) subjectFail(w http.ResponseWriter, r *request, receipt *compliance.Receipt, err error) {
	code, msg := compliance.ErrorStatus(err)
	if code == http.StatusServiceUnavailable {
		c.log.Error("console: compliance action failed", "event", "compliance_failed", "actor", audit.ActorFrom(r.Context()), "err", err)
	}
	c.renderSubject(w, r, code, subjectBody{Error: msg, Receipt: receipt.Records()})
}

// fail answers a failed read with the API's status and text.
func (c *Console) fail(w http.ResponseWriter, r *request, op string, err error) {
	code, msg := compliance.ErrorStatus(err)
	if code == http.StatusServiceUnavailable {
		c.log.Error("console: "+op+" failed", "event", "console_failed", "actor", audit.ActorFrom(r.Context()), "err", err)
	}
	c.errorPage(w, r.Request, r, code, msg)
}
