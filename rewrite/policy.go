package rewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/rewrite/attach"
	"github.com/tokenproxy/tokenproxy/rewrite/header"
	"github.com/tokenproxy/tokenproxy/rewrite/scan"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// direction is what one pass does with each address it meets: the
// inbound rewrite, the outbound rewrite, or the leak guard.
type direction struct {
	addr              scan.AddrFunc      // bodies, unstructured fields, display names
	mailbox           header.MailboxFunc // structured address fields
	guard             bool               // scan raw bytes as well; write nothing
	asciiOut          bool               // replacements are ASCII (tokens), or nothing is written
	rejectUnscannable bool
	unknown           []string // outbound: unknown or erased tokens
	// attachments is the attachment policy; enforce applies it (inbound
	// only: outbound and the guard read what they can, pass the rest).
	attachments *attach.Policy
	enforce     bool
	held        int64 // bytes of the held-part budget this pass has reserved
	// names finds a customer address without tokenizing it (ErrLeak): a
	// PDF is read for one, never rewritten (pdfpart.go). Inbound only.
	names scan.AddrFunc
}

func (d *direction) rewriteText(kind scan.TextKind, b []byte) ([]byte, bool, error) {
	return scan.ReplaceAddresses(kind, b, d.addr)
}

// scanRaw lets the guard see every byte as it travels, not only decoded
// text: an address in a non-text attachment sent as 7bit is still a leak.
func (d *direction) scanRaw(b []byte) error {
	if !d.guard {
		return nil
	}
	_, _, err := scan.ReplaceAddresses(scan.TextPlain, b, d.addr)
	return err
}

// Header fields whose values are threading keys (RFC 5322 section 3.6.4,
// RFC 2045 section 7): they look like addresses but must stay
// byte-identical or CRM threading breaks.
var msgIDFields = map[string]bool{
	"message-id": true, "in-reply-to": true, "references": true, "content-id": true,
	"resent-message-id": true, "original-message-id": true,
}

// Structured address fields (RFC 5322 sections 3.6.2, 3.6.3, 3.6.6, 3.6.7;
// RFC 8098; RFC 2076): parsed as address lists.
var addressFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true,
	"resent-bcc": true, "resent-reply-to": true, "return-path": true,
	"disposition-notification-to": true, "return-receipt-to": true, "errors-to": true,
	"mail-followup-to": true, "mail-reply-to": true, "x-original-from": true, "x-original-sender": true,
}

// rewriteHeader rewrites every field but the msg-id fields, in place.
func (w *walker) rewriteHeader(h *mimeHeader) error {
	for i := range h.fields {
		f := &h.fields[i]
		if msgIDFields[f.key] || !mayHoldAddress(h.raw(f)) {
			continue
		}
		v, changed, err := w.rewriteField(f.key, h.rawValue(f))
		if err != nil {
			return fieldErr(h.name(f), err)
		}
		if changed {
			f.value, f.changed = v, true
		}
	}
	if len(h.broken) > 0 {
		b, _, err := w.d.rewriteText(scan.TextPlain, h.broken)
		if err != nil {
			return err
		}
		h.broken = append(h.broken[:0], b...)
	}
	return nil
}

// mayHoldAddress is the fast path for the many fields that cannot hold an
// address in any form the scanners read: no '@', no percent-encoded one,
// no encoded word.
func mayHoldAddress(raw []byte) bool {
	return bytes.IndexByte(raw, '@') >= 0 || bytes.Contains(raw, []byte("=?")) || bytes.Contains(raw, []byte("%40"))
}

func (w *walker) rewriteField(key, value string) (string, bool, error) {
	plain := func(b []byte, fn scan.AddrFunc) ([]byte, bool, error) {
		return scan.ReplaceAddresses(scan.TextPlain, b, fn)
	}
	// The guard reads every field as free text: raw text and decoded
	// encoded words hold every address, display names included, and a
	// checker should not depend on the parser whose work it checks.
	if addressFields[key] && !w.d.guard {
		fn := w.d.mailbox
		if key == "return-path" {
			fn = pathOnly(fn)
		}
		v, changed, err := header.RewriteAddressField(value, fn)
		if !errors.Is(err, header.ErrUnparsableHeader) {
			return v, changed, err
		}
		// Unparsable as an address list: every address in it is still
		// found as in free text.
	}
	return header.RewriteUnstructured(value, plain, w.d.addr)
}

// pathOnly keeps display names out of Return-Path, whose value is a path,
// not a mailbox (RFC 5322 section 3.6.7).
func pathOnly(fn header.MailboxFunc) header.MailboxFunc {
	return func(m header.Mailbox) (header.Mailbox, bool, error) {
		out, changed, err := fn(m)
		out.Name = m.Name
		return out, changed && out != m, err
	}
}

// fieldErr names the field in an error; a name that could itself hold an
// address (field names may contain '@') is left out.
func fieldErr(name string, err error) error {
	if strings.ContainsAny(name, "@%&") || len(name) > 40 {
		return fmt.Errorf("in a header field: %w", err)
	}
	return fmt.Errorf("in header field %s: %w", name, err)
}

func domainPart(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// pseudonym is the display name given to a customer under the
// pseudonymize policy: stable and derived from the token alone.
func pseudonym(tokenLocal string) string {
	_, hash, _ := strings.Cut(tokenLocal, "-")
	if len(hash) > 6 {
		hash = hash[:6]
	}
	return "Customer " + strings.ToUpper(hash)
}

// inbound tokenizes customer addresses.
type inbound struct {
	rw  *Rewriter
	ctx context.Context
	rep *Report
	// base counts the new tokens of the message created before its
	// rewrite (the envelope sender's, staged): Limits.MaxNewTokens
	// bounds the sum.
	base int
}

func (rw *Rewriter) inboundPolicy(ctx context.Context, rep *Report, base int) *direction {
	p := &inbound{rw: rw, ctx: ctx, rep: rep, base: base}
	// Tokens are ASCII unless the configured relay domain or prefix is not.
	f := rw.tokens.Format()
	ascii := isASCII(f.Domain) && isASCII(f.Prefix)
	return &direction{addr: p.addr, mailbox: p.mailbox, asciiOut: ascii, rejectUnscannable: rw.opts.Unscannable == UnscannableReject,
		attachments: rw.attachments, enforce: true, names: rw.leakCheck}
}

// internal reports whether an address stays as it is: an internal domain
// or the relay domain (already a token).
func (rw *Rewriter) internal(addr string) (bool, error) {
	d, err := address.NormalizeDomain(domainPart(addr))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformedAddress, err)
	}
	return d == rw.tokens.Format().Domain || rw.opts.Internal(d), nil
}

// token returns the token of a customer address, "" for one that stays.
func (p *inbound) token(addr, name string) (string, string, error) {
	if keep, err := p.rw.internal(addr); keep || err != nil {
		return "", "", err
	}
	iss, err := p.rw.tokens.Tokenize(p.ctx, addr, name)
	if errors.Is(err, address.ErrInvalidAddress) {
		return "", "", fmt.Errorf("%w: %w", ErrMalformedAddress, err)
	}
	if err != nil {
		return "", "", err
	}
	if iss.New {
		p.rep.Created++
		if n := p.base + p.rep.Created; n > p.rw.opts.Limits.MaxNewTokens {
			return "", "", fmt.Errorf("%w: more than %d", ErrTooManyNewTokens, p.rw.opts.Limits.MaxNewTokens)
		}
	}
	p.rep.addToken(iss.Local)
	return iss.Address, iss.Local, nil
}

func (p *inbound) addr(addr string) (string, error) {
	t, _, err := p.token(addr, "")
	return t, err
}

func (p *inbound) mailbox(m header.Mailbox) (header.Mailbox, bool, error) {
	out := m
	var local string
	if m.Addr != "" {
		t, l, err := p.token(m.Addr, m.Name)
		if err != nil {
			return m, false, err
		}
		if t != "" {
			out.Addr, local = t, l
		}
	}
	switch {
	case local != "" && p.rw.opts.DisplayNames == NamesPseudonymize:
		out.Name = pseudonym(local)
	case local != "" && p.rw.opts.DisplayNames == NamesDrop:
		out.Name = ""
	case out.Name != "":
		n, _, err := scan.ReplaceAddresses(scan.TextPlain, []byte(out.Name), p.addr)
		if err != nil {
			return m, false, err
		}
		out.Name = string(n)
	}
	return out, out != m, nil
}

// outbound resolves tokens back to the customers' addresses.
type outbound struct {
	rw  *Rewriter
	ctx context.Context
	rep *Report
	d   *direction
}

func (rw *Rewriter) outboundPolicy(ctx context.Context, rep *Report) *direction {
	p := &outbound{rw: rw, ctx: ctx, rep: rep}
	p.d = &direction{addr: p.addr, mailbox: p.mailbox, attachments: rw.attachments}
	return p.d
}

// resolve returns the entry of a token address; ok is false for any other
// address and for an unknown token, which is recorded for the caller.
func (p *outbound) resolve(addr string) (tokenize.Entry, bool, error) {
	d, err := address.NormalizeDomain(domainPart(addr))
	if err != nil || d != p.rw.tokens.Format().Domain {
		return tokenize.Entry{}, false, nil
	}
	e, err := p.rw.tokens.Resolve(p.ctx, addr)
	if errors.Is(err, tokenize.ErrUnknownToken) {
		p.noteUnknown(strings.ToLower(addr))
		return tokenize.Entry{}, false, nil
	}
	if err != nil {
		return tokenize.Entry{}, false, err
	}
	p.rep.addToken(e.Local)
	return e, true, nil
}

func (p *outbound) noteUnknown(addr string) {
	for _, u := range p.d.unknown {
		if u == addr {
			return
		}
	}
	p.d.unknown = append(p.d.unknown, addr)
}

func (p *outbound) addr(addr string) (string, error) {
	e, ok, err := p.resolve(addr)
	if !ok || err != nil {
		return "", err
	}
	return e.Original, nil
}

// mailbox restores address and display name. The CRM shows the pseudonym
// or the token as the name; the customer sees their own name again.
func (p *outbound) mailbox(m header.Mailbox) (header.Mailbox, bool, error) {
	out := m
	if m.Addr != "" {
		e, ok, err := p.resolve(m.Addr)
		if err != nil {
			return m, false, err
		}
		if ok {
			out.Addr = e.Original
			switch {
			case e.DisplayName != "":
				out.Name = e.DisplayName
			case m.Name == pseudonym(e.Local) || strings.EqualFold(m.Name, e.Address):
				out.Name = ""
			}
		}
	}
	if out.Name != "" {
		n, _, err := scan.ReplaceAddresses(scan.TextPlain, []byte(out.Name), p.addr)
		if err != nil {
			return m, false, err
		}
		out.Name = string(n)
	}
	return out, out != m, nil
}

// guardPolicy fails on any address that is neither internal nor at the
// relay domain.
func (rw *Rewriter) guardPolicy() *direction {
	check := rw.leakCheck
	mailbox := func(m header.Mailbox) (header.Mailbox, bool, error) {
		if m.Addr != "" {
			if _, err := check(m.Addr); err != nil {
				return m, false, err
			}
		}
		_, _, err := scan.ReplaceAddresses(scan.TextPlain, []byte(m.Name), check)
		return m, false, err
	}
	return &direction{addr: check, mailbox: mailbox, guard: true, asciiOut: true, attachments: rw.attachments}
}

// leakCheck is the guard's AddrFunc: ErrLeak for any address that is
// neither internal nor at the relay domain.
func (rw *Rewriter) leakCheck(addr string) (string, error) {
	if keep, err := rw.internal(addr); keep && err == nil {
		return "", nil
	}
	return "", ErrLeak
}
