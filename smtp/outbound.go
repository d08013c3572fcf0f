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
	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/rewrite/header"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// OutboundOptions configures the route from the CRM to customers.
type OutboundOptions struct {
	Route RouteOptions
	// Users maps AUTH user names to bcrypt or argon2id hashes.
	Users map[string]string
	// Networks may relay without AUTH (still after STARTTLS).
	Networks []netip.Prefix
	// AllowedDomains are the lower-case ASCII domains a non-token
	// recipient may be in.
	AllowedDomains map[string]bool
	// RewriteFrom, when set, replaces the address of the From field and
	// the envelope sender.
	RewriteFrom string
	// PublicOf maps each CRM intake address, normalized, to its public
	// address: sender fields naming the CRM are mapped back to it.
	PublicOf  map[string]string
	Map       rewrite.Tokens // the token map (*tokenize.Map): the rewriter's seam
	Rewriter  *rewrite.Rewriter
	LocalCase address.LocalCase
	// MaxHeaderBytes bounds the header section held back to rewrite the
	// sender fields.
	MaxHeaderBytes int
	// AuthFailureDelay slows password guessing on one connection; default
	// 1 s, negative for none (tests).
	AuthFailureDelay time.Duration
	// DKIM, when set, signs every relayed message; its Domain must align
	// with the From addresses (policy checks it at load).
	DKIM *mailauth.SignerConfig
}

// maxAuthFailures closes a session after this many failed AUTHs: a
// brute-force client must reconnect, and each failure already costs it a
// password hash.
const maxAuthFailures = 3

type outboundPolicy struct{ o OutboundOptions }

// maxConcurrentChecks is the number of password checks run at once (see
// Route.authChecks).
const maxConcurrentChecks = 4

// NewOutbound returns the outbound route.
func NewOutbound(o OutboundOptions) (*Route, error) {
	c, err := NewOutboundConfig(o)
	if err != nil {
		return nil, err
	}
	o.Route.Name = RouteOutbound
	return newRoute(o.Route, c)
}

// NewOutboundConfig checks o and returns the outbound route's
// configuration, for NewOutbound and Route.Reload. Of o.Route it reads
// Limits and Downstream.
func NewOutboundConfig(o OutboundOptions) (*RouteConfig, error) {
	if o.Map == nil || o.Rewriter == nil {
		return nil, errors.New("smtp: outbound route needs a map and a rewriter")
	}
	if len(o.Users) == 0 && len(o.Networks) == 0 {
		return nil, errors.New("smtp: outbound route needs auth users or client networks")
	}
	for name, hash := range o.Users {
		if err := ValidatePasswordHash(hash); err != nil {
			return nil, fmt.Errorf("smtp: auth user %q: %w", name, err)
		}
	}
	if d := o.DKIM; d != nil && (d.Domain == "" || d.Selector == "" || d.Key == nil) {
		return nil, errors.New("smtp: outbound route: DKIM needs a domain, a selector and a key")
	}
	if o.AuthFailureDelay == 0 {
		o.AuthFailureDelay = time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = rewrite.DefaultLimits.MaxHeaderBytes
	}
	return newRouteConfig(RouteOutbound, o.Route, &outboundPolicy{o: o})
}

// mayMail: TLS first, then AUTH or an allowed network (RFC 3207 §4: a
// server may require TLS; 530 5.7.0 per RFC 3207 and RFC 4954 §6).
func (p *outboundPolicy) mayMail(s *session) error {
	if !s.isTLS() {
		return errNeedTLS
	}
	if s.user != "" || p.networkAllowed(s.ip) {
		return nil
	}
	return errNeedAuth
}

func (p *outboundPolicy) networkAllowed(ip netip.Addr) bool {
	for _, n := range p.o.Networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *outboundPolicy) checkSender(from string) error {
	if from == "" {
		return nil
	}
	if _, err := address.Normalize(from, p.o.LocalCase); err != nil {
		return fmt.Errorf("%w (%w)", errBadSender, err)
	}
	return nil
}

// sender is the company address replies go out under: rewrite_from when
// set, else the public address of a CRM mailbox, else what the CRM gave.
// The null sender stays null (RFC 5321 §4.5.5).
func (p *outboundPolicy) sender(_ context.Context, _ *session, from string) (string, error) {
	if from == "" {
		return "", nil
	}
	if p.o.RewriteFrom != "" {
		return p.o.RewriteFrom, nil
	}
	a, err := address.Normalize(from, p.o.LocalCase)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", errBadSender, err)
	}
	if pub, ok := p.o.PublicOf[a.String()]; ok {
		return pub, nil
	}
	return from, nil
}

// recipient resolves a token, or lets a non-token address through in an
// allowed domain only, and never with a '%' or '!' in its local part
// (envelope.go), which the smarthost might follow off the allowed domain.
// A source route ("@a,@b:user@c", RFC 5321 §4.1.2) never reaches here:
// go-smtp's parsePath drops it and passes the final mailbox, as §3.6.1
// allows, and that mailbox is checked like any other.
func (p *outboundPolicy) recipient(ctx context.Context, s *session, to string) (string, error) {
	a, err := address.Normalize(to, p.o.LocalCase)
	if err != nil {
		return "", fmt.Errorf("%w (%w)", errBadRecipient, err)
	}
	if a.Domain != p.o.Map.Format().Domain && routesOnward(a) {
		return "", errRoutedRecipient
	}
	if a.Domain == p.o.Map.Format().Domain {
		e, err := p.o.Map.Resolve(ctx, to)
		if errors.Is(err, tokenize.ErrUnknownToken) {
			s.r.opts.Metrics.UnknownTokens(RouteOutbound, 1)
			return "", fmt.Errorf("%w (%w)", errNoSuchUser, err)
		}
		if err != nil {
			return "", fmt.Errorf("smtp: resolve recipient token: %w", err)
		}
		s.log.Debug("recipient token resolved", "token", e.Local)
		s.rcptTokens = append(s.rcptTokens, e.Address)
		return e.Original, nil
	}
	if p.o.AllowedDomains[a.Domain] {
		return a.String(), nil
	}
	return "", errRelayDenied
}

// rewrite detokenizes the message, then maps its sender fields to the
// company.
// commit: the outbound route creates no token.
func (p *outboundPolicy) commit(context.Context, *session, *dataResult) error { return nil }

func (p *outboundPolicy) rewrite(ctx context.Context, s *session, dst io.Writer, src io.Reader) (*rewrite.Report, error) {
	sw := newSenderRewriter(dst, p.o.MaxHeaderBytes, p.senderField)
	rep, err := p.o.Rewriter.Outbound(ctx, sw, src)
	if err == nil {
		err = sw.Close()
	}
	s.msgIDHash = sw.msgIDHash
	return rep, err
}

// contentTokens turns the local parts the rewriter resolved into token
// addresses.
func (p *outboundPolicy) contentTokens(report *rewrite.Report) []string {
	f := p.o.Map.Format()
	out := make([]string, 0, len(report.Tokens))
	for _, local := range report.Tokens {
		out = append(out, f.Address(local))
	}
	return out
}

// senderField returns the rewrite of one sender field: From becomes
// rewrite_from when set; in every sender field a CRM mailbox becomes its
// public address. Display names are kept.
func (p *outboundPolicy) senderField(field string) header.MailboxFunc {
	return func(m header.Mailbox) (header.Mailbox, bool, error) {
		if m.Addr == "" {
			return m, false, nil
		}
		out := m
		if a, err := address.Normalize(m.Addr, p.o.LocalCase); err == nil {
			if pub, ok := p.o.PublicOf[a.String()]; ok {
				out.Addr = pub
			}
		}
		if field == "from" && p.o.RewriteFrom != "" {
			out.Addr = p.o.RewriteFrom
		}
		return out, out != m, nil
	}
}

func (p *outboundPolicy) authMechanisms(s *session) []string {
	if !s.isTLS() || len(p.o.Users) == 0 || s.user != "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// auth: never before TLS (RFC 4954 §4: no plaintext passwords in clear).
func (p *outboundPolicy) auth(s *session, mech string) (sasl.Server, error) {
	if !s.isTLS() {
		return nil, errNeedTLS
	}
	if len(p.o.Users) == 0 {
		return nil, errAuthNotHere
	}
	check := func(user, password string) error { return p.checkLogin(s, user, password) }
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, password string) error {
			if identity != "" && identity != user {
				return p.checkLogin(s, "", "") // no proxy authorization
			}
			return check(user, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	default:
		return nil, errAuthMechanism
	}
}

// checkLogin verifies a user name and password. A failure costs the same
// time for an unknown user as for a wrong password, and is slowed down.
func (p *outboundPolicy) checkLogin(s *session, user, password string) error {
	if p.passwordOK(s.r.authChecks, user, password) {
		s.user = user
		s.r.opts.Metrics.AuthAttempt("success")
		s.log.Info("authenticated", "event", "auth", "user", user)
		return nil
	}
	s.authFailures++
	s.r.opts.Metrics.AuthAttempt("failure")
	s.log.Warn("authentication failed", "event", "auth_failed", "failures", s.authFailures, "ip", s.ip.String())
	if p.o.AuthFailureDelay > 0 {
		time.Sleep(p.o.AuthFailureDelay)
	}
	if s.authFailures >= maxAuthFailures {
		s.closeSoon()
	}
	return s.reply("auth", errAuthFailed)
}

// passwordOK checks one password, at most cap(checks) at a time.
func (p *outboundPolicy) passwordOK(checks chan struct{}, user, password string) bool {
	checks <- struct{}{}
	defer func() { <-checks }()
	hash, ok := p.o.Users[user]
	if !ok {
		DummyCheck(password)
		return false
	}
	return CheckPassword(hash, password)
}
