package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// InboundOptions configures the route from customers to the CRM.
type InboundOptions struct {
	Route RouteOptions
	// Mailboxes maps each public address, normalized, to its CRM intake
	// address. Only these recipients are accepted: never an open relay.
	Mailboxes map[string]string
	// Map is the token map (*tokenize.Map). Each message's new tokens are
	// staged (Begin) and committed only when the message passed every
	// check, before the downstream's final dot (DESIGN.md invariants 3
	// and 4).
	Map       rewrite.Stager
	Rewriter  *rewrite.Rewriter
	LocalCase address.LocalCase
	// Internal reports whether a lower-case ASCII domain is the company's
	// or the CRM's: such senders keep their address.
	Internal func(domain string) bool
	// AuthservID names our Authentication-Results (RFC 8601 §2.5); ""
	// means Route.Hostname. Incoming fields that claim it are always
	// removed, with or without AuthCheck.
	AuthservID string
	// AuthCheck, when set, verifies SPF, DKIM and DMARC and reports the
	// verdicts to the CRM; nil: no check (and no DNS).
	AuthCheck *AuthCheck
	// MaxHeaderBytes bounds the header section read to remove forged
	// Authentication-Results fields.
	MaxHeaderBytes int
	// NewTokenRate bounds the new tokens committed per minute (zero
	// fields: unlimited). The counts start over when a reload builds a
	// new configuration.
	NewTokenRate NewTokenRate
	// Now is the clock of NewTokenRate; nil: time.Now.
	Now func() time.Time
	// TrustedRelays, TrustedAuthservIDs (mailauth.Trust) and Postmaster:
	// relay.go and postmaster.go. Fields of the trusted authserv-ids are
	// removed from any other client's message, with or without AuthCheck.
	TrustedRelays      []netip.Prefix
	TrustedAuthservIDs []string
	Postmaster         string
	// Quarantine keeps the originals of the attachments the policy
	// stripped (quarantine.Store), with the new tokens, before the final
	// dot; nil keeps none. Its failure refuses the message (451).
	// Unquarantine removes them again when the downstream then refuses
	// the message, which leaves nothing behind (DESIGN.md invariant 4).
	Quarantine   func(ctx context.Context, parts []rewrite.Stripped) error
	Unquarantine func(ctx context.Context, refs []string) error
}

// inboundPolicy tokenizes the envelope sender and the message and accepts
// only the configured mailboxes.
type inboundPolicy struct {
	o    InboundOptions
	rate *tokenRate
}

// NewInbound returns the inbound route.
func NewInbound(o InboundOptions) (*Route, error) {
	c, err := NewInboundConfig(o)
	if err != nil {
		return nil, err
	}
	o.Route.Name = RouteInbound
	return newRoute(o.Route, c)
}

// NewInboundConfig checks o and returns the inbound route's configuration,
// for NewInbound and Route.Reload. Of o.Route it reads Limits, Downstream
// and Hostname (the default AuthservID).
func NewInboundConfig(o InboundOptions) (*RouteConfig, error) {
	if o.Map == nil || o.Rewriter == nil || len(o.Mailboxes) == 0 {
		return nil, errors.New("smtp: inbound route needs a map, a rewriter and mailboxes")
	}
	if o.Internal == nil {
		o.Internal = func(string) bool { return false }
	}
	if o.AuthCheck != nil && o.AuthCheck.Resolver == nil {
		return nil, errors.New("smtp: inbound route: the authentication check needs a resolver")
	}
	if o.AuthservID == "" {
		o.AuthservID = o.Route.Hostname
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = rewrite.DefaultLimits.MaxHeaderBytes
	}
	return newRouteConfig(RouteInbound, o.Route, &inboundPolicy{o: o, rate: newTokenRate(o.NewTokenRate, o.Now)})
}

// mayMail: customer MTAs use STARTTLS when they can (RFC 3207); it is not
// required here, as a public MX cannot require it.
func (p *inboundPolicy) mayMail(*session) error { return nil }

func (p *inboundPolicy) checkSender(s *session, from string) error {
	if from == "" {
		return nil // the null sender of bounces (RFC 5321 §4.5.5)
	}
	a, err := address.Normalize(from, p.o.LocalCase)
	if err != nil {
		return fmt.Errorf("%w (%w)", errBadSender, err)
	}
	// Only the proxy writes addresses in the relay domain: a customer
	// sending as a token would reach the CRM as that token's owner. A
	// trusted relay (a company gateway, DESIGN.md) may.
	if a.Domain == p.o.Map.Format().Domain && !p.trusts(s.ip) {
		return errRelayDomainSender
	}
	return nil
}

// sender is the customer's token; internal senders and the null sender are
// kept. It begins the transaction's stage: a new sender's token is staged
// and committed with the message's other new tokens (commit), so a
// transaction that is refused, reset or never gets its data leaves no
// token (DESIGN.md invariant 4).
func (p *inboundPolicy) sender(ctx context.Context, s *session, from string) (string, error) {
	s.stage = p.o.Map.Begin()
	if from == "" {
		return "", nil
	}
	a, err := address.Normalize(from, p.o.LocalCase)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", errBadSender, err)
	}
	if p.o.Internal(a.Domain) {
		return a.String(), nil
	}
	iss, err := s.stage.Tokenize(ctx, from, "")
	if errors.Is(err, tokenize.ErrAlreadyToken) {
		return a.String(), nil
	}
	if err != nil {
		return "", fmt.Errorf("smtp: tokenize envelope sender: %w", err)
	}
	s.log.Debug("envelope sender tokenized", "token", iss.Local, "new", iss.New)
	return iss.Address, nil
}

func (p *inboundPolicy) recipient(_ context.Context, _ *session, to string) (string, error) {
	if pm, ok := p.postmaster(to); ok {
		if pm == "" {
			return "", errRelayDenied
		}
		return pm, nil
	}
	a, err := address.Normalize(to, p.o.LocalCase)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", errBadRecipient, err)
	}
	crm, ok := p.o.Mailboxes[a.String()]
	if !ok {
		return "", errRelayDenied
	}
	return crm, nil
}

func (p *inboundPolicy) rewrite(ctx context.Context, s *session, dst io.Writer, src io.Reader) (*rewrite.Report, error) {
	rep, err := p.o.Rewriter.InboundStaged(ctx, s.stage, dst, src)
	if errors.Is(err, rewrite.ErrTooManyNewTokens) {
		s.newTokenLimit(limitPerMessage, s.stage.Staged())
	}
	return rep, err
}

// commit makes the message's new tokens durable, with their creation
// records, once it passed every check (the rewrite, the leak guard, the
// limits) and before the downstream gets the final dot (DESIGN.md
// invariant 3). The rate is checked first: a message over it commits
// nothing.
func (p *inboundPolicy) commit(ctx context.Context, s *session, res *dataResult) error {
	if err := p.commitTokens(ctx, s, res); err != nil {
		return err
	}
	if rep := res.report; p.o.Quarantine != nil && rep != nil && len(rep.Quarantine) > 0 {
		if err := p.o.Quarantine(ctx, rep.Quarantine); err != nil {
			return fmt.Errorf("smtp: quarantine stripped attachments: %w", err)
		}
		res.undo = p.unquarantine(s, rep.Stripped)
	}
	return nil
}

// unquarantine returns the undo of a message's quarantined originals.
func (p *inboundPolicy) unquarantine(s *session, refs []string) func() {
	if p.o.Unquarantine == nil {
		return nil
	}
	return func() {
		// The transaction's context may be what ended it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.o.Unquarantine(ctx, refs); err != nil {
			s.log.Error("quarantined originals of a refused message not removed", "event", "quarantine_undo",
				"refs", refs, "err", err)
		}
	}
}

func (p *inboundPolicy) commitTokens(ctx context.Context, s *session, res *dataResult) error {
	n := s.stage.Staged()
	if n == 0 {
		return nil
	}
	if limit := p.rate.take(s.ip, n); limit != "" {
		s.newTokenLimit(limit, n)
		return errNewTokenRate
	}
	created, err := s.stage.Commit(ctx)
	res.created += created
	s.r.opts.Metrics.TokensCreated(created)
	if err != nil {
		return fmt.Errorf("smtp: commit new tokens: %w", err)
	}
	return nil
}

// contentTokens: the inbound route creates tokens, it resolves none.
func (p *inboundPolicy) contentTokens(*rewrite.Report) []string { return nil }

func (p *inboundPolicy) authMechanisms(*session) []string { return nil }

func (p *inboundPolicy) auth(*session, string) (sasl.Server, error) { return nil, errAuthNotHere }
