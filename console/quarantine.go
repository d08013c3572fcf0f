package console

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/compliance"
)

// quarantineBody is the Quarantine page: the kept originals of stripped
// attachments (descriptions only: reference, kind, tokenized file name,
// size, time), and the result of the last action with its audit record.
type quarantineBody struct {
	Items    []compliance.QuarantineItem
	ListErr  string
	Listed   *audit.Record // the quarantine.list record this view wrote
	Selected string        // the reference the forms preselect
	Exported *compliance.QuarantineItem
	Download string // id of an export ready for its one fetch
	Deleted  string // the reference just deleted
	Receipt  []audit.Record
	Error    string
}

func (c *Console) quarantinePage(w http.ResponseWriter, r *request) {
	c.renderQuarantine(w, r, http.StatusOK, quarantineBody{Selected: r.URL.Query().Get("ref")})
}

// renderQuarantine lists the quarantine (audited quarantine.list, as the
// API's listing is) under the action's result. The listing's record is
// kept apart from the action's receipt: the receipt shows what the
// action did.
func (c *Console) renderQuarantine(w http.ResponseWriter, r *request, code int, b quarantineBody) {
	if !compliance.ValidQuarantineRef(b.Selected) {
		b.Selected = "" // what goes back into the page is a reference or nothing
	}
	ctx, listed := compliance.WithReceipt(r.Context())
	items, err := c.svc.QuarantineList(ctx)
	if err != nil {
		lc, msg := compliance.QuarantineErrorStatus(err)
		if lc == http.StatusServiceUnavailable {
			c.log.Error("console: quarantine list failed", "event", "console_failed", "actor", audit.ActorFrom(r.Context()), "err", err)
		}
		b.ListErr = msg
		if code == http.StatusOK {
			code = lc
		}
	}
	b.Items = items
	if recs := listed.Records(); len(recs) > 0 {
		b.Listed = &recs[len(recs)-1]
	}
	c.render(w, code, "quarantine", c.data(r, "quarantine", "Quarantine", b))
}

// quarantineExport takes one original out (audited quarantine.export,
// reason required): the page shows the record, and a link fetches the
// file once, as the subject export does.
func (c *Console) quarantineExport(w http.ResponseWriter, r *request) {
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	ctx, receipt := compliance.WithReceipt(r.Context())
	it, data, err := c.svc.QuarantineExport(ctx, ref, r.PostFormValue("reason"))
	if err != nil {
		c.quarantineFail(w, r, ref, receipt, err)
		return
	}
	id := c.sessions.addDownload(r.s, download{name: downloadName(it), body: data, contentType: "application/octet-stream"})
	c.renderQuarantine(w, r, http.StatusOK, quarantineBody{Exported: &it, Download: id, Selected: ref, Receipt: receipt.Records()})
}

// quarantineDownload hands an exported original over once, as a file
// (never shown inline: it is whatever the customer sent).
func (c *Console) quarantineDownload(w http.ResponseWriter, r *request) {
	d, ok := c.sessions.takeDownload(r.s, r.PathValue("id"))
	if !ok {
		c.errorPage(w, r.Request, r, http.StatusNotFound, "This export was already downloaded, or its session ended. Export again.")
		return
	}
	ct := d.contentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.name}))
	w.Write(d.body)
}

// quarantineDelete deletes one original (audited quarantine.delete,
// reason required) once the officer has typed its reference again.
func (c *Console) quarantineDelete(w http.ResponseWriter, r *request) {
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	if ref == "" || !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm")), ref) {
		c.renderQuarantine(w, r, http.StatusBadRequest, quarantineBody{Selected: ref,
			Error: "The confirmation does not match the reference. Nothing was deleted."})
		return
	}
	ctx, receipt := compliance.WithReceipt(r.Context())
	if err := c.svc.QuarantineDelete(ctx, ref, r.PostFormValue("reason")); err != nil {
		c.quarantineFail(w, r, ref, receipt, err)
		return
	}
	c.renderQuarantine(w, r, http.StatusOK, quarantineBody{Deleted: ref, Receipt: receipt.Records()})
}

// quarantineFail answers a failed action with the API's status and text,
// and the audit record it produced, if any (a "not_found").
func (c *Console) quarantineFail(w http.ResponseWriter, r *request, ref string, receipt *compliance.Receipt, err error) {
	code, msg := compliance.QuarantineErrorStatus(err)
	if code == http.StatusServiceUnavailable {
		c.log.Error("console: quarantine action failed", "event", "compliance_failed", "actor", audit.ActorFrom(r.Context()), "err", err)
	}
	c.renderQuarantine(w, r, code, quarantineBody{Selected: ref, Error: msg, Receipt: receipt.Records()})
}

// downloadName is the file name an export is saved as: the name the CRM
// saw (addresses in it are tokens already), without any path, or the
// reference when there is none.
func downloadName(it compliance.QuarantineItem) string {
	name := it.Name
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, name)
	if strings.Trim(name, ". ") == "" {
		return it.Ref + ".bin"
	}
	return name
}

// byteSize is a size for people: 1536 → "1.5 KB".
func byteSize(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}
