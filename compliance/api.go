package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Mux is where Register mounts the API: the admin listener (admin.Server), or an
// *http.ServeMux in tests.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register mounts the compliance API on mux. Addresses travel in POST
// bodies, never in URLs, which proxies and access logs keep.
func (s *Service) Register(mux Mux) { (&httpAPI{svc: s}).register(mux) }

// httpAPI serves the compliance operations over HTTPS.
type httpAPI struct{ svc *Service }

const complianceBodyLimit = 16 << 10

func (api *httpAPI) register(mux Mux) {
	mux.Handle("POST /v1/compliance/resolve", api.with(policy.RoleOfficer, "resolve", api.resolve))
	mux.Handle("POST /v1/compliance/lookup", api.with(policy.RoleOfficer, "lookup", api.lookup))
	mux.Handle("POST /v1/compliance/export", api.with(policy.RoleOfficer, "export", api.export))
	mux.Handle("POST /v1/compliance/erase", api.with(policy.RoleOfficer, "erase", api.erase))
	mux.Handle("GET /v1/audit/records", api.with(policy.RoleAuditor, "audit_read", api.records))
	mux.Handle("GET /v1/audit/verify", api.with(policy.RoleAuditor, "audit_verify", api.verify))
	mux.Handle("GET /v1/backup", api.with(policy.RoleOperator, "backup", api.backup))
	api.registerQuarantine(mux) // quarantine.go
	if api.svc.cluster != nil {
		mux.Handle("GET "+peerPath, api.peerOnly(api.peerRecords))
		mux.Handle("GET "+peerPagePath, api.peerOnly(api.peerPage))
		mux.Handle("GET "+peerTrailPath, api.peerOnly(api.peerTrail))
	}
}

// with authenticates (HTTPS only, client certificate or bearer token),
// checks the role, and runs h with the principal as the audit actor.
// Refusals are counted per client and audited as aggregates (refusals.go);
// a client past the limit gets 429 before its credentials are looked at.
func (api *httpAPI) with(role, op string, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, client := r.Context(), clientOf(r)
		if api.svc.refusals.limited(client) {
			api.refuse(ctx, client, "unknown", op, "rate_limited")
			w.Header().Set("Retry-After", strconv.Itoa(int(refusalWindow/time.Second)))
			apiError(w, http.StatusTooManyRequests, "too many refused calls; try again later")
			return
		}
		if r.TLS == nil {
			api.refuse(ctx, client, "unknown", op, "not_https")
			apiError(w, http.StatusForbidden, "the compliance API is served over HTTPS only")
			return
		}
		p, ok := api.svc.who.identify(r)
		if !ok {
			api.refuse(ctx, client, "unknown", op, "unauthenticated")
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenproxy"`)
			apiError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		actor := "principal:" + p.Name
		if !hasRole(p, role) {
			api.refuse(ctx, client, actor, op, "role")
			apiError(w, http.StatusForbidden, "the "+role+" role is required")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, complianceBodyLimit)
		h(w, r.WithContext(audit.WithActor(ctx, actor)))
	})
}

// refuse counts a refused call for the client's aggregate record.
func (api *httpAPI) refuse(ctx context.Context, client, actor, op, why string) {
	api.svc.refusals.note(audit.WithActor(ctx, actor), client, actor, op, why)
}

type subjectRequest struct {
	Token   string `json:"token,omitempty"`
	Address string `json:"address,omitempty"`
	Reason  string `json:"reason"`
}

func decodeRequest(w http.ResponseWriter, r *http.Request) (subjectRequest, bool) {
	var req subjectRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "the body must be a JSON object with token or address, and reason")
		return req, false
	}
	return req, true
}

type resolveReply struct {
	Token       string    `json:"token"`
	Address     string    `json:"address"`
	DisplayName string    `json:"display_name,omitempty"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"last_seen"`
}

func (api *httpAPI) resolve(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	e, err := api.svc.Resolve(r.Context(), req.Token, req.Reason)
	if err != nil {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, resolveReply{Token: e.Address, Address: e.Original, DisplayName: e.DisplayName,
		Created: e.Created.UTC(), LastSeen: e.LastSeen.UTC()})
}

func (api *httpAPI) lookup(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	tokens, err := api.svc.lookup(r.Context(), req.Address, req.Reason)
	if err != nil {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, map[string][]string{"tokens": nonNil(tokens)})
}

func (api *httpAPI) export(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	out, err := api.svc.export(r.Context(), req.Address, req.Reason)
	if err != nil {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, out)
}

func (api *httpAPI) erase(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	tokens, err := api.svc.erase(r.Context(), req.Address, req.Reason)
	wiped := err == nil
	if err != nil && !errors.Is(err, tokenize.ErrScrubBusy) {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, map[string]any{"erased": nonNil(tokens), "pages_wiped": wiped})
}

func (api *httpAPI) records(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	if err := api.svc.listAudit(r.Context(), q, w, func(states []TrailState) { setTrailHeaders(w, states) }); err != nil {
		api.svc.log.Error("audit listing failed", "event", "audit_read_failed", "err", err)
	}
}

// parseQuery reads from_seq, since, until (RFC 3339), event (repeatable),
// token and limit.
func parseQuery(r *http.Request) (audit.Query, error) {
	v := r.URL.Query()
	q := audit.Query{Events: v["event"], Token: v.Get("token"), Actor: v.Get("actor")}
	var err error
	if s := v.Get("from_seq"); s != "" {
		if q.FromSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return q, errors.New("from_seq must be a number")
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
			return q, errors.New("limit must be a non-negative number")
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			if *t.dst, err = time.Parse(time.RFC3339, s); err != nil {
				return q, errors.New(t.name + " must be an RFC 3339 time")
			}
		}
	}
	return q, nil
}

func (api *httpAPI) verify(w http.ResponseWriter, r *http.Request) {
	if api.svc.Clustered() {
		api.verifyCluster(w, r)
		return
	}
	rep, err := api.svc.verifyAudit(r.Context())
	if err != nil {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, map[string]any{"ok": rep.OK(), "report": rep})
}

func (api *httpAPI) backup(w http.ResponseWriter, r *http.Request) {
	if api.svc.db == nil {
		apiError(w, http.StatusNotImplemented, "the token map's store (etcd) has no online backup here: take an etcd snapshot (runbook)")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="tokenproxy.db"`)
	if _, err := api.svc.backup(r.Context(), w); err != nil {
		// Headers may be gone: the client sees a cut stream, which
		// `proxy compliance backup` refuses to keep.
		api.svc.log.Error("online backup failed", "event", "backup_failed", "err", err)
		if errors.Is(err, audit.ErrWrite) {
			apiError(w, http.StatusServiceUnavailable, "the audit trail cannot be written")
		}
	}
}

// fail maps a service error to a status. Details go to the log; the
// client gets a generic text (it may be an address's parse error).
func (api *httpAPI) fail(w http.ResponseWriter, ctx context.Context, err error) {
	code, msg := ErrorStatus(err)
	if code == http.StatusServiceUnavailable {
		api.svc.log.Error("compliance call failed", "event", "compliance_failed", "actor", audit.ActorFrom(ctx), "err", err)
	}
	apiError(w, code, msg)
}

// ErrorStatus maps a service error to the HTTP status and the text the
// API and the console answer with. The text is generic (it may be an
// address's parse error): details are for the log.
func ErrorStatus(err error) (code int, msg string) {
	switch {
	case errors.Is(err, errBadReason):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errNotFound), errors.Is(err, tokenize.ErrUnknownToken):
		return http.StatusNotFound, "no such token"
	case errors.Is(err, errBulkGuard):
		return http.StatusTooManyRequests, "resolution limit per hour reached; the attempt was audited"
	case isAddressError(err):
		return http.StatusBadRequest, "not a valid e-mail address"
	}
	return http.StatusServiceUnavailable, "the operation could not be completed and was not performed; see the proxy log"
}

func isAddressError(err error) bool {
	var ae *address.AddressError
	return errors.As(err, &ae)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func apiJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	apiJSON(w, code, map[string]string{"error": msg})
}
