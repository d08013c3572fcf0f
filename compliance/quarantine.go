package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/quarantine"
)

// Quarantine is the store of stripped attachments (*quarantine.Store).
type Quarantine interface {
	List(ctx context.Context) ([]quarantine.Item, error)
	Get(ctx context.Context, ref string) (quarantine.Item, []byte, error)
	Delete(ctx context.Context, ref string) error
}

var errNoQuarantine = errors.New("no quarantine on this proxy")

// quarantineList lists the kept attachments (officer; audited). It shows
// descriptions only: kind, file name as the CRM saw it, size, time.
func (c *Service) quarantineList(ctx context.Context) ([]quarantine.Item, error) {
	if c.quarantine == nil {
		return nil, errNoQuarantine
	}
	items, err := c.quarantine.List(ctx)
	if err != nil {
		return nil, err
	}
	return items, c.record(ctx, audit.Record{Event: audit.QuarantineList, Count: len(items), Outcome: "ok"})
}

// quarantineExport hands one original over (officer, with a reason).
// The record is written before the content leaves.
func (c *Service) quarantineExport(ctx context.Context, ref, reason string) (quarantine.Item, []byte, error) {
	if err := CheckReason(reason); err != nil {
		return quarantine.Item{}, nil, err
	}
	if c.quarantine == nil {
		return quarantine.Item{}, nil, errNoQuarantine
	}
	it, data, err := c.quarantine.Get(ctx, ref)
	outcome, err := quarantineOutcome(err)
	if err != nil && outcome == "" {
		return quarantine.Item{}, nil, err
	}
	if aerr := c.record(ctx, audit.Record{Event: audit.QuarantineExport, Reason: reason, Outcome: outcome,
		Detail: map[string]string{"ref": refDetail(ref)}}); aerr != nil {
		return quarantine.Item{}, nil, aerr
	}
	return it, data, err
}

// quarantineDelete deletes one original (officer, with a reason). The
// record is written first: a deletion that cannot be audited does not
// happen.
func (c *Service) quarantineDelete(ctx context.Context, ref, reason string) error {
	if err := CheckReason(reason); err != nil {
		return err
	}
	if c.quarantine == nil {
		return errNoQuarantine
	}
	if _, _, err := c.quarantine.Get(ctx, ref); err != nil {
		outcome, err := quarantineOutcome(err)
		if outcome != "" {
			if aerr := c.record(ctx, audit.Record{Event: audit.QuarantineDelete, Reason: reason, Outcome: outcome,
				Detail: map[string]string{"ref": refDetail(ref)}}); aerr != nil {
				return aerr
			}
		}
		return err
	}
	if err := c.record(ctx, audit.Record{Event: audit.QuarantineDelete, Reason: reason, Outcome: "ok",
		Detail: map[string]string{"ref": ref}}); err != nil {
		return err
	}
	return c.quarantine.Delete(ctx, ref)
}

// quarantineOutcome maps the store's refusals to an outcome and the
// service's errors; "" for an error that is no answer (a failure).
func quarantineOutcome(err error) (string, error) {
	switch {
	case err == nil:
		return "ok", nil
	case errors.Is(err, quarantine.ErrNotFound), errors.Is(err, quarantine.ErrBadRef):
		return "not_found", errNotFound
	}
	return "", err
}

// refDetail keeps what an officer typed out of the trail unless it is a
// reference: a mistyped ref could hold anything, an address included.
func refDetail(ref string) string {
	if quarantine.ValidRef(ref) {
		return ref
	}
	return "(not a reference)"
}

func (api *httpAPI) registerQuarantine(mux Mux) {
	mux.Handle("GET /v1/compliance/quarantine", api.with(policy.RoleOfficer, "quarantine_list", api.quarantineList))
	mux.Handle("POST /v1/compliance/quarantine-export", api.with(policy.RoleOfficer, "quarantine_export", api.quarantineExport))
	mux.Handle("POST /v1/compliance/quarantine-delete", api.with(policy.RoleOfficer, "quarantine_delete", api.quarantineDelete))
}

type quarantineRequest struct {
	Ref    string `json:"ref"`
	Reason string `json:"reason"`
}

func decodeQuarantine(w http.ResponseWriter, r *http.Request) (quarantineRequest, bool) {
	var req quarantineRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "the body must be a JSON object with ref and reason")
		return req, false
	}
	return req, true
}

// quarantineFail answers the quarantine's own refusals, then as fail does.
func (api *httpAPI) quarantineFail(w http.ResponseWriter, ctx context.Context, err error) {
	switch {
	case errors.Is(err, errNoQuarantine):
		apiError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, errNotFound):
		apiError(w, http.StatusNotFound, "no such quarantined attachment")
	default:
		api.fail(w, ctx, err)
	}
}

func (api *httpAPI) quarantineList(w http.ResponseWriter, r *http.Request) {
	items, err := api.svc.quarantineList(r.Context())
	if err != nil {
		api.quarantineFail(w, r.Context(), err)
		return
	}
	if items == nil {
		items = []quarantine.Item{}
	}
	apiJSON(w, http.StatusOK, map[string]any{"items": items})
}

// quarantineExportReply carries the original; JSON encodes Content in
// base64.
type quarantineExportReply struct {
	Ref     string    `json:"ref"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name,omitempty"`
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
	Content []byte    `json:"content"`
}

func (api *httpAPI) quarantineExport(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeQuarantine(w, r)
	if !ok {
		return
	}
	it, data, err := api.svc.quarantineExport(r.Context(), req.Ref, req.Reason)
	if err != nil {
		api.quarantineFail(w, r.Context(), err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	apiJSON(w, http.StatusOK, quarantineExportReply{Ref: it.Ref, Kind: it.Kind, Name: it.Name, Size: it.Size,
		Created: it.Created, Content: data})
}

func (api *httpAPI) quarantineDelete(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeQuarantine(w, r)
	if !ok {
		return
	}
	if err := api.svc.quarantineDelete(r.Context(), req.Ref, req.Reason); err != nil {
		api.quarantineFail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, map[string]string{"deleted": req.Ref})
}
