package smtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
)

// Auditor writes audit records; *audit.Log is one. An Append error fails
// the audited operation (DESIGN.md "Compliance and audit").
type Auditor interface {
	Append(ctx context.Context, recs ...audit.Record) ([]audit.Record, error)
}

// errAuditWrite marks a message refused because its audit record could
// not be written: 451 4.3.0, as for a store failure.
var errAuditWrite = errors.New("smtp: audit record not written")

// auditMessage writes the outbound route's one record per message: the
// tokens it resolved (envelope and content) and the hashed Message-ID.
// It runs after the rewrite and before the downstream gets the final dot,
// so a message whose record cannot be written is not relayed.
func (s *session) auditMessage(ctx context.Context, res *dataResult) error {
	a := s.r.opts.Audit
	if a == nil || s.r.opts.Name != RouteOutbound {
		return nil
	}
	rec := audit.Record{Event: audit.TokenResolved, Actor: s.actor(), Route: s.r.opts.Name,
		MessageID: s.msgIDHash, Tokens: s.resolvedTokens(res), Outcome: "ok"}
	rec.Count = len(rec.Tokens)
	if _, err := a.Append(ctx, rec); err != nil {
		return errors.Join(errAuditWrite, err)
	}
	return nil
}

// actor names the route and, when the client authenticated, its user.
func (s *session) actor() string {
	if s.user != "" && !strings.Contains(s.user, "@") {
		return "route:" + s.r.opts.Name + ":" + s.user
	}
	return "route:" + s.r.opts.Name
}

// resolvedTokens are the envelope recipients' tokens, then the tokens the
// rewriter resolved in the content, each once.
func (s *session) resolvedTokens(res *dataResult) []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	for _, t := range s.rcptTokens {
		add(t)
	}
	if res.report != nil {
		for _, t := range s.cfg.policy.contentTokens(res.report) {
			add(t)
		}
	}
	return out
}

// hashMessageID returns the hex SHA-256 (128 bits) of a Message-ID field
// value. The record can then be found from a message in hand without the
// trail holding a Message-ID, which some clients build from the sender's
// address.
func hashMessageID(value []byte) string {
	sum := sha256.Sum256(bytes.TrimSpace(value))
	return hex.EncodeToString(sum[:16])
}
