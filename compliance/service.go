package compliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Errors of the compliance service; the HTTP layer maps them to statuses.
var (
	errBadReason = errors.New("a reason is required: 1 to 500 characters, without an e-mail address")
	errBulkGuard = errors.New("too many resolutions in the last hour")
	errNotFound  = errors.New("no such token or subject")
)

// maxReasonLen bounds a stated reason: it is evidence, not a document.
const maxReasonLen = 500

// Service runs the compliance operations on the token map, each as one
// audited act: the record is written before data leaves (resolve, lookup,
// export) or before the change (erase), and an operation whose record
// cannot be written does not happen.
type Service struct {
	m     TokenMap
	db    Backuper
	trail *audit.Log
	keys  func(ctx context.Context) (audit.Keys, error)
	who   *principals
	guard *resolveGuard
	// refusals aggregates the API's refused calls per client.
	refusals *refusals
	log      *slog.Logger
	// quarantine holds stripped attachments (quarantine.go); nil: none.
	quarantine Quarantine
	// cluster reaches the other nodes' trails; nil on a single node.
	cluster *Cluster
}

// Options are what a Service works on.
type Options struct {
	Map   TokenMap
	DB    Backuper // the map's store, for the operator's online backup; nil: none (etcd)
	Trail *audit.Log
	// Keys returns the keys that verify the trail's checkpoints.
	Keys func(ctx context.Context) (audit.Keys, error)
	// Config gives the API's principals and the bulk guard's limit;
	// Reload replaces both.
	Config policy.Compliance
	Log    *slog.Logger
	// Quarantine is the store of stripped attachments; nil: none.
	Quarantine Quarantine
	// Cluster, on a cluster node, makes exports and audit listings merge
	// every node's trail (cluster.go); nil: this node's trail only.
	Cluster *Cluster
}

// New returns the compliance service. Mount its HTTP API with Register.
func New(o Options) *Service {
	s := &Service{m: o.Map, db: o.DB, trail: o.Trail, keys: o.Keys, who: newPrincipals(o.Config.Principals),
		guard: newResolveGuard(o.Config.MaxResolutionsPerHour), log: o.Log, quarantine: o.Quarantine, cluster: o.Cluster}
	s.refusals = newRefusals(s.writeRefusals)
	return s
}

// Close writes the refused API calls counted but not yet audited: a stop
// within a window must not lose them. The HTTP API must be stopped first.
func (s *Service) Close() { s.refusals.flushAll() }

// writeRefusals writes an aggregate of refused API calls; the refusals
// stand even if that fails.
func (c *Service) writeRefusals(ctx context.Context, r audit.Record) {
	if err := c.record(ctx, r); err != nil {
		c.log.Error("refused compliance calls not audited", "event", "audit_failed", "count", r.Count, "err", err)
	}
}

// Reload applies a reloaded configuration's principals and resolution
// limit, and audits the reload (changed names the fields that changed).
func (s *Service) Reload(ctx context.Context, c policy.Compliance, changed []string) {
	s.who.set(c.Principals)
	s.guard.setMax(c.MaxResolutionsPerHour)
	fields := strings.Join(changed, ",")
	if len(fields) > 900 {
		fields = fields[:900] + "…"
	}
	err := s.record(audit.WithActor(ctx, "system:sighup"), audit.Record{Event: audit.ConfigReloaded,
		Outcome: "ok", Count: len(changed), Detail: map[string]string{"changed": fields}})
	if err != nil {
		s.log.Error("configuration reload not audited", "event", "audit_failed", "err", err)
	}
}

func (c *Service) record(ctx context.Context, r audit.Record) error {
	if r.Actor == "" {
		r.Actor = audit.ActorFrom(ctx)
	}
	written, err := c.trail.Append(ctx, r)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	receiptOf(ctx).add(written)
	return nil
}

// refused audits a refused call; the refusal stands even if that fails.
func (c *Service) refused(ctx context.Context, op, why string) {
	err := c.record(ctx, audit.Record{Event: audit.ComplianceRefused, Outcome: "refused",
		Detail: map[string]string{"operation": op, "why": why}})
	if err != nil {
		c.log.Error("refused compliance call not audited", "event", "audit_failed", "operation", op, "err", err)
	}
}

// Resolve returns the entry behind a token (officer, with a reason).
func (c *Service) Resolve(ctx context.Context, token, reason string) (tokenize.Entry, error) {
	if err := CheckReason(reason); err != nil {
		return tokenize.Entry{}, err
	}
	actor := audit.ActorFrom(ctx)
	if !c.guard.allow(actor) {
		c.refused(ctx, "resolve", "bulk_guard")
		c.log.Warn("bulk-resolution guard refused a resolution", "event", "bulk_guard", "actor", actor)
		return tokenize.Entry{}, errBulkGuard
	}
	e, err := c.m.Inspect(ctx, token)
	outcome := "ok"
	switch {
	case errors.Is(err, tokenize.ErrUnknownToken):
		outcome, err = "not_found", errNotFound
	case err != nil:
		return tokenize.Entry{}, err
	}
	rec := audit.Record{Event: audit.ComplianceResolve, Reason: reason, Outcome: outcome}
	if outcome == "ok" {
		rec.Tokens = []string{e.Address}
	}
	if aerr := c.record(ctx, rec); aerr != nil {
		return tokenize.Entry{}, aerr
	}
	return e, err
}

// lookup returns the tokens of an address (subject access, GDPR Art. 15).
func (c *Service) lookup(ctx context.Context, address, reason string) ([]string, error) {
	if err := CheckReason(reason); err != nil {
		return nil, err
	}
	tokens, err := c.tokensOf(ctx, address)
	if err != nil {
		return nil, err
	}
	err = c.record(ctx, audit.Record{Event: audit.ComplianceLookup, Reason: reason, Tokens: tokens,
		Count: len(tokens), Outcome: outcomeOf(len(tokens))})
	return tokens, err
}

func outcomeOf(n int) string {
	if n == 0 {
		return "not_found"
	}
	return "ok"
}

// tokensOf returns the token addresses held for an address.
func (c *Service) tokensOf(ctx context.Context, address string) ([]string, error) {
	locals, err := c.m.Lookup(ctx, address)
	if err != nil {
		return nil, err
	}
	return c.addresses(locals), nil
}

// addresses turns token local parts into token addresses.
func (c *Service) addresses(locals []string) []string {
	out := make([]string, len(locals))
	for i, l := range locals {
		out[i] = c.m.Format().Address(l)
	}
	return out
}

// subjectExport is what a subject access request hands over: the tokens
// held for the address, with what is stored, and every audit record that
// names one of them.
type subjectExport struct {
	Address string          `json:"address"`
	Tokens  []exportedToken `json:"tokens"`
	Audit   []audit.Record  `json:"audit"`
	// Trails, on a cluster, lists each node whose trail was read for
	// Audit, and why one's records are missing.
	Trails []TrailState `json:"trails,omitempty"`
}

type exportedToken struct {
	Token       string    `json:"token"`
	DisplayName string    `json:"display_name,omitempty"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"last_seen"`
}

// export gathers a subject's records (GDPR Art. 15). Export is not a
// resolution: the caller already knows the address.
func (c *Service) export(ctx context.Context, address, reason string) (subjectExport, error) {
	if err := CheckReason(reason); err != nil {
		return subjectExport{}, err
	}
	tokens, err := c.tokensOf(ctx, address)
	if err != nil {
		return subjectExport{}, err
	}
	out := subjectExport{Address: address, Tokens: []exportedToken{}, Audit: []audit.Record{}}
	for _, t := range tokens {
		e, err := c.m.Inspect(ctx, t)
		if err != nil {
			return subjectExport{}, err
		}
		out.Tokens = append(out.Tokens, exportedToken{Token: t, DisplayName: e.DisplayName, Created: e.Created.UTC(), LastSeen: e.LastSeen.UTC()})
		recs, states, err := c.mergedRecords(ctx, audit.Query{Token: t})
		if err != nil {
			return subjectExport{}, err
		}
		sortByEvent(recs)
		for _, r := range recs {
			out.Audit = append(out.Audit, r.Rec)
		}
		out.Trails = addStates(out.Trails, states)
	}
	if c.cluster == nil {
		out.Trails = nil
	}
	err = c.record(ctx, audit.Record{Event: audit.ComplianceExport, Reason: reason, Tokens: tokens,
		Count: len(out.Audit), Outcome: outcomeOf(len(tokens))})
	return out, err
}

// erase erases a subject (GDPR Art. 17): its tokens become tombstones
// (later mail to them gets 550 5.1.1), and the pages that held its
// ciphertext are wiped. The record is written first: an erasure that
// cannot be audited does not happen.
func (c *Service) erase(ctx context.Context, address, reason string) ([]string, error) {
	if err := CheckReason(reason); err != nil {
		return nil, err
	}
	tokens, err := c.tokensOf(ctx, address)
	if err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, c.record(ctx, audit.Record{Event: audit.ComplianceErase, Reason: reason, Outcome: "not_found"})
	}
	if err := c.record(ctx, audit.Record{Event: audit.ComplianceErase, Reason: reason, Tokens: tokens, Count: len(tokens), Outcome: "ok"}); err != nil {
		return nil, err
	}
	erased, err := c.m.EraseSubject(ctx, address)
	if err != nil && !errors.Is(err, tokenize.ErrScrubBusy) {
		return nil, err
	}
	return c.addresses(erased), err
}

// mergedRecords reads the records q selects from the trail file (the
// writer only appends to it, so reading it while serving is safe) and, on
// a cluster, from every other node's, merged (merge.go).
func (c *Service) mergedRecords(ctx context.Context, q audit.Query) ([]MergedRecord, []TrailState, error) {
	srcs, states, closeAll, err := c.sources(ctx, q)
	defer closeAll()
	if err != nil {
		return nil, nil, err
	}
	var out []MergedRecord
	for r, err := range Merge(ctx, srcs, q, nil) {
		if err != nil {
			return nil, nil, err
		}
		out = append(out, r)
	}
	return out, counted(states, out), nil
}

// openTrail opens the trail for reading once the creation records of
// every token committed so far are in it: they reach it from the token
// map's outbox a moment after the commit, and a subject's export must
// not miss the newest.
func (c *Service) openTrail(ctx context.Context) (*os.File, error) {
	if err := c.m.SyncAudit(ctx); err != nil {
		return nil, fmt.Errorf("%w: deliver pending creation records: %w", tokenize.ErrAudit, err)
	}
	return os.Open(c.trail.Path())
}

// listAudit streams matching records to w as JSON lines, as written
// (auditor); on a cluster every node's, merged. opened, when not nil, is
// told which trails are read before the first line is written.
func (c *Service) listAudit(ctx context.Context, q audit.Query, w io.Writer, opened func([]TrailState)) error {
	if err := c.record(ctx, audit.Record{Event: audit.AuditRead, Outcome: "ok"}); err != nil {
		return err
	}
	srcs, states, closeAll, err := c.sources(ctx, q)
	defer closeAll()
	if err != nil {
		return err
	}
	if opened != nil {
		opened(states)
	}
	for r, err := range Merge(ctx, srcs, q, nil) {
		if err != nil {
			return err
		}
		if _, err := w.Write(append(r.Line, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// verifyAudit verifies the whole trail against the head file and the
// signing keys (auditor).
func (c *Service) verifyAudit(ctx context.Context) (audit.Report, error) {
	if err := c.record(ctx, audit.Record{Event: audit.AuditVerify, Outcome: "ok"}); err != nil {
		return audit.Report{}, err
	}
	return audit.VerifyFile(ctx, c.trail.Path(), c.keys)
}

// backup streams a consistent copy of the database while serving
// (operator).
func (c *Service) backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := c.record(ctx, audit.Record{Event: audit.Backup, Outcome: "ok", Detail: map[string]string{"via": "api"}}); err != nil {
		return 0, err
	}
	return c.db.Backup(w)
}
