package compliance

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
)

// This file is what the compliance console (package console) uses of the
// service: the same audited operations the API calls, exported, so that
// the browser and the API can never disagree on what an action does or
// how it is audited.

// Identify returns the principal of a request, as the API identifies it
// (verified client certificate first, else bearer token).
func (s *Service) Identify(r *http.Request) (policy.Principal, bool) { return s.who.identify(r) }

// IdentifyToken returns the principal of a bearer token pasted into the
// console's sign-in form.
func (s *Service) IdentifyToken(token string) (policy.Principal, bool) {
	return byToken(*s.who.list.Load(), token)
}

// Principal returns the configured principal of that name: a console
// session names its principal, and one removed by a reload stops there.
func (s *Service) Principal(name string) (policy.Principal, bool) {
	for _, p := range *s.who.list.Load() {
		if p.Name == name {
			return p, true
		}
	}
	return policy.Principal{}, false
}

// HasRole says whether p holds role.
func HasRole(p policy.Principal, role string) bool { return hasRole(p, role) }

// Actor is the audit actor of a principal, as the API writes it.
func Actor(p policy.Principal) string { return "principal:" + p.Name }

// PrincipalInfo is what the console shows of a principal: never its
// token's hash or its certificate's fingerprint.
type PrincipalInfo struct {
	Name  string
	Roles []string
	// Via says how it signs in: "bearer token", "client certificate", or both.
	Via []string
	// Resolutions is how many resolutions it made in the last hour (the
	// bulk guard's count), of Limit.
	Resolutions, Limit int
}

// Principals lists the configured principals with their use of the bulk
// guard.
func (s *Service) Principals() []PrincipalInfo {
	ps := *s.who.list.Load()
	out := make([]PrincipalInfo, 0, len(ps))
	for _, p := range ps {
		pi := PrincipalInfo{Name: p.Name, Roles: slices.Clone(p.Roles)}
		if p.TokenSHA256 != "" {
			pi.Via = append(pi.Via, "bearer token")
		}
		if p.ClientCertCN != "" || p.ClientCertSHA256 != "" {
			pi.Via = append(pi.Via, "client certificate")
		}
		pi.Resolutions, pi.Limit = s.guard.used(Actor(p))
		out = append(out, pi)
	}
	return out
}

// Limited says whether client (an IP) is past the refused-call limit: the
// console answers it 429 before looking at its credentials, as the API does.
func (s *Service) Limited(client string) bool { return s.refusals.limited(client) }

// Refused counts a refused call (unauthenticated, missing role, CSRF) for
// the client's aggregate audit record, as the API's refusals are.
func (s *Service) Refused(ctx context.Context, client, actor, op, why string) {
	s.refusals.note(audit.WithActor(ctx, actor), client, actor, op, why)
}

// Lookup returns the tokens of an address (audited compliance.lookup).
func (s *Service) Lookup(ctx context.Context, address, reason string) ([]string, error) {
	return s.lookup(ctx, address, reason)
}

// SubjectExport is a subject access request's result (GDPR Art. 15).
type SubjectExport = subjectExport

// Export gathers a subject's records (audited compliance.export).
func (s *Service) Export(ctx context.Context, address, reason string) (SubjectExport, error) {
	return s.export(ctx, address, reason)
}

// Erase erases a subject (audited compliance.erase). Its error is
// tokenize.ErrScrubBusy when the tokens are erased but the free pages
// are not wiped yet.
func (s *Service) Erase(ctx context.Context, address, reason string) ([]string, error) {
	return s.erase(ctx, address, reason)
}

// TokenInfo is one token of a subject, as the console lists it.
type TokenInfo struct {
	Token             string
	Created, LastSeen time.Time
}

// SubjectTokens is Lookup (audited compliance.lookup) with each token's
// creation and last use, read without counting a use.
func (s *Service) SubjectTokens(ctx context.Context, address, reason string) ([]TokenInfo, error) {
	tokens, err := s.lookup(ctx, address, reason)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, 0, len(tokens))
	for _, t := range tokens {
		e, err := s.m.Inspect(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, TokenInfo{Token: t, Created: e.Created.UTC(), LastSeen: e.LastSeen.UTC()})
	}
	return out, nil
}

// ListAudit streams the records matching q as JSON lines, as written
// (audited audit.read).
func (s *Service) ListAudit(ctx context.Context, q audit.Query, w io.Writer) error {
	return s.listAudit(ctx, q, w, nil)
}

// AuditPage returns up to limit records matching q, newest first, of
// those with seq below before (0: from the newest). It reads the trail
// from its end, so the newest page of a large trail is cheap (audited
// audit.read).
func (s *Service) AuditPage(ctx context.Context, q audit.Query, before uint64, limit int) ([]audit.Record, error) {
	if err := s.record(ctx, audit.Record{Event: audit.AuditRead, Outcome: "ok"}); err != nil {
		return nil, err
	}
	return s.pageOf(ctx, q, before, limit)
}

// pageOf reads this node's page of records newest first: up to limit
// matching q, of those with seq below before (0: from the newest).
func (s *Service) pageOf(ctx context.Context, q audit.Query, before uint64, limit int) ([]audit.Record, error) {
	f, err := s.openTrail(ctx)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var out []audit.Record
	err = audit.ScanBackward(f, st.Size(), func(r audit.Record) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if (before == 0 || r.Seq < before) && q.Match(&r) {
			out = append(out, r)
		}
		return len(out) < limit && r.Seq > q.FromSeq, nil
	})
	return out, err
}

// TrailStatus is the trail's state at a glance: its head, and its last
// checkpoint (seq 0 when none is among the newest MaxCheckpointScan
// records).
type TrailStatus struct {
	Head       audit.Head
	Checkpoint audit.Record
}

// MaxCheckpointScan bounds how far back TrailStatus looks for a
// checkpoint: one is written every audit.checkpoint_interval, so a trail
// without one that far back has a signing problem, which the overview
// then shows, without reading gigabytes on every visit.
const MaxCheckpointScan = 100000

// TrailStatus reads the trail's head and last checkpoint. It discloses no
// record's content, so it is not itself audited (like /metrics).
func (s *Service) TrailStatus(ctx context.Context) (TrailStatus, error) {
	st := TrailStatus{Head: s.trail.Head()}
	f, err := os.Open(s.trail.Path())
	if err != nil {
		return st, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, err
	}
	n := 0
	err = audit.ScanBackward(f, fi.Size(), func(r audit.Record) (bool, error) {
		if r.Event == audit.Checkpoint {
			st.Checkpoint = r
			return false, nil
		}
		n++
		return n < MaxCheckpointScan, ctx.Err()
	})
	return st, err
}

// VerifyAudit verifies the whole trail, as the API does (audited
// audit.verify), calling progress with the bytes read so far and the
// file's size as it goes.
func (s *Service) VerifyAudit(ctx context.Context, progress func(done, total int64)) (audit.Report, error) {
	if err := s.record(ctx, audit.Record{Event: audit.AuditVerify, Outcome: "ok"}); err != nil {
		return audit.Report{}, err
	}
	return audit.VerifyFileProgress(ctx, s.trail.Path(), s.keys, progress)
}

// Receipt collects the audit records an operation wrote, so that the
// console shows each result with the record it produced.
type Receipt struct{ recs []audit.Record }

type receiptKey struct{}

// WithReceipt returns a context whose operations leave their audit
// records in the returned Receipt. One request, one goroutine: a Receipt
// is not for concurrent use.
func WithReceipt(ctx context.Context) (context.Context, *Receipt) {
	r := &Receipt{}
	return context.WithValue(ctx, receiptKey{}, r), r
}

// Records are the records written under the receipt's context.
func (r *Receipt) Records() []audit.Record { return r.recs }

func receiptOf(ctx context.Context) *Receipt {
	r, _ := ctx.Value(receiptKey{}).(*Receipt)
	return r
}

func (r *Receipt) add(recs []audit.Record) {
	if r != nil {
		r.recs = append(r.recs, recs...)
	}
}
