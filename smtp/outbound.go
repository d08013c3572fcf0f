package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
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
	// AuthGuard limits password guessing (authguard.go); nil:
	// DefaultAuthGuard. Fixed for the route's life: a reload keeps the
	// failures counted and the check slots sized at start.
	AuthGuard *AuthGuard
}

// maxAuthFailures closes a session after this many failed AUTHs: a
// brute-force client must reconnect, and each failure already costs it a
// password hash.
const maxAuthFailures = 3

type outboundPolicy struct{ o OutboundOptions }

// NewOutbound returns the outbound route.
func NewOutbound(o OutboundOptions) (*Route, error) {
	c, err := NewOutboundConfig(o)
	if err != nil {
		return nil, err
	}
	o.Route.Name = RouteOutbound
	r, err := newRoute(o.Route, c)
	if err != nil {
		return nil, err
	}
	g := DefaultAuthGuard
	if o.AuthGuard != nil {
		g = *o.AuthGuard
	}
	r.auth = newAuthLimiter(g, maxArgon2MemoryKiB(o.Users))
	return r, nil
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

func (p *outboundPolicy) checkSender(_ *session, from string) error {
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
// time for an unknown user as for a wrong password, and is slowed down,
// more with each failure of the client IP; a client or account locked out
// gets 454 4.7.0 without a check (AuthGuard).
func (p *outboundPolicy) checkLogin(s *session, user, password string) error {
	lim, now := s.r.auth, time.Now()
	if lim.locked(s.ip, user, now) {
		s.r.opts.Metrics.AuthAttempt("locked_out")
		return s.reply("auth", errAuthLockedOut)
	}
	release, ok := lim.acquire(s.ip, user)
	if !ok {
		s.r.opts.Metrics.AuthAttempt("busy")
		s.log.Warn("authentication not checked: no check slot in time", "event", "auth_busy")
		return s.reply("auth", errAuthLockedOut)
	}
	good := p.passwordOK(user, password)
	// The check's argon2 memory (64 MiB for HashPassword's hashes) is
	// garbage now; collecting it before the slot is free lets the next
	// check reuse it, so the heap stays near MemoryBudget instead of
	// growing to twice it before the collector runs (issue 18 item 3:
	// 20 failed AUTHs had taken RSS from 39 to 561 MB).
	runtime.GC()
	release()
	if good {
		lim.success(s.ip, user, now)
		s.user = user
		s.r.opts.Metrics.AuthAttempt("success")
		s.log.Info("authenticated", "event", "auth", "user", user)
		return nil
	}
	return p.authFailed(s, user)
}

// authFailed counts a failed AUTH, logs each lockout it starts (the
// account name only when it is one of ours: a guessed name may be an
// address), waits, and closes the session after maxAuthFailures.
func (p *outboundPolicy) authFailed(s *session, user string) error {
	_, account := p.o.Users[user]
	delay, lockouts := s.r.auth.failure(s.ip, user, account, time.Now())
	s.authFailures++
	s.r.opts.Metrics.AuthAttempt("failure")
	s.log.Warn("authentication failed", "event", "auth_failed", "failures", s.authFailures, "ip", s.ip.String())
	for _, scope := range lockouts {
		s.r.opts.Metrics.AuthLockout(scope)
		attrs := []any{"event", "auth_lockout", "scope", scope, "for", s.r.auth.g.Lockout.String()}
		if scope == "user" {
			attrs = append(attrs, "user", user)
		}
		s.log.Warn("authentication locked out", attrs...)
	}
	if p.o.AuthFailureDelay > 0 && delay > 0 {
		time.Sleep(max(delay, p.o.AuthFailureDelay))
	}
	if s.authFailures >= maxAuthFailures {
		s.closeSoon()
	}
	return s.reply("auth", errAuthFailed)
}

// passwordOK checks one password; the caller holds a check slot.
func (p *outboundPolicy) passwordOK(user, password string) bool {
	hash, ok := p.o.Users[user]
	if !ok {
		DummyCheck(password)
		return false
	}
	return CheckPassword(hash, password)
}
