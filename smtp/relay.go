package smtp

import (
	"net/netip"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/mailauth"
)

// The inbound route behind a company gateway (issue 16 item 1): clients in
// InboundOptions.TrustedRelays are trusted relays. SPF and HELO are judged
// for the first hop outside them (mailauth.Trust), they alone may send
// Postfix's XFORWARD and XCLIENT (below), and a MAIL FROM in the relay
// domain (inboundPolicy.checkSender).

// Replies to XFORWARD and XCLIENT, as Postfix gives them (XFORWARD_README,
// XCLIENT_README): 550 5.7.0 to a client that may not send them, 503 5.5.1
// inside a transaction, 501 5.5.4 to a malformed attribute.
var (
	errXNotAuthorized = &refusal{550, gosmtp.EnhancedCode{5, 7, 0}, "Not authorized"}
	errXInTxn         = &refusal{503, gosmtp.EnhancedCode{5, 5, 1}, "Not allowed in a mail transaction"}
	errXBadAttribute  = &refusal{501, gosmtp.EnhancedCode{5, 5, 4}, "Bad attribute syntax"}
)

// relayPolicy is implemented by a route that has trusted relays (inbound).
type relayPolicy interface {
	trusts(ip netip.Addr) bool
}

// trusts reports whether ip is a trusted relay.
func (p *inboundPolicy) trusts(ip netip.Addr) bool {
	return p.trust().IsRelay(ip)
}

// trust is what the authentication check believes beyond the client.
func (p *inboundPolicy) trust() mailauth.Trust {
	return mailauth.Trust{Relays: p.o.TrustedRelays, AuthservIDs: p.o.TrustedAuthservIDs}
}

// verifyInput is what the check knows of the message's origin: the client
// (after XCLIENT, the one the relay named), its HELO, and from a trusted
// relay the hop its XFORWARD named.
func (p *inboundPolicy) verifyInput(s *session) mailauth.VerifyInput {
	in := mailauth.VerifyInput{ClientIP: s.ip.AsSlice(), Helo: s.helo(), MailFrom: s.from, Trust: p.trust()}
	if p.trusts(s.ip) {
		in.Forwarded = s.fwd
	}
	return in
}

// removedAuthservIDs are the authserv-ids whose Authentication-Results
// fields are removed from the client's message: ours always; the trusted
// relays' too unless the client is one of them (RFC 8601 §5: from anyone
// else they are forgeries the CRM must not read).
func (p *inboundPolicy) removedAuthservIDs(s *session) []string {
	ids := []string{p.o.AuthservID}
	if !p.trusts(s.ip) {
		ids = append(ids, p.o.TrustedAuthservIDs...)
	}
	return ids
}

// trustedRelay reports whether the session's client is a trusted relay of
// its route.
func (s *session) trustedRelay() bool {
	rp, ok := s.cfg.policy.(relayPolicy)
	return ok && rp.trusts(s.ip)
}

// helo is the client's HELO name: the one a trusted relay gave with
// XCLIENT, else the EHLO argument.
func (s *session) helo() string {
	if s.xclientHelo != "" {
		return s.xclientHelo
	}
	return s.c.Hostname()
}

// Extensions announces XFORWARD and XCLIENT to trusted relays only
// (gosmtp.ExtensionSession, third_party/go-smtp patch 3): Postfix sends
// XFORWARD only to a server that announces it.
func (s *session) Extensions() []string {
	if !s.trustedRelay() {
		return nil
	}
	return []string{"XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE", "XCLIENT NAME ADDR PORT PROTO HELO LOGIN"}
}

// Command handles XFORWARD and XCLIENT (gosmtp.ExtensionSession); any
// other unknown command gets go-smtp's 500 5.5.2.
func (s *session) Command(cmd, arg string) error {
	if cmd != "XFORWARD" && cmd != "XCLIENT" {
		return gosmtp.ErrCommandUnrecognized
	}
	if !s.trustedRelay() {
		s.log.Warn("relay command from an untrusted client", "event", "xcommand_refused", "command", cmd)
		return s.reply("xcommand", errXNotAuthorized)
	}
	if s.rcpts != nil {
		return s.reply("xcommand", errXInTxn)
	}
	attrs, err := parseXAttrs(arg)
	if err != nil {
		return s.reply("xcommand", err)
	}
	if cmd == "XFORWARD" {
		// A relay may split the attributes over several commands.
		if attrs.addr.IsValid() {
			s.fwd.IP = attrs.addr
		}
		if attrs.helo != "" {
			s.fwd.Helo = attrs.helo
		}
		s.log.Debug("relay named the client", "event", "xforward", "addr", attrs.addr.IsValid(), "helo", attrs.helo != "")
		return nil
	}
	return s.xclient(attrs)
}

// xclient makes the session the client the relay names (Postfix XCLIENT):
// its IP and HELO count from here on, for trust too, and the relay gets a
// new greeting and sends EHLO again.
func (s *session) xclient(a xAttrs) error {
	if a.addr.IsValid() {
		s.ip = a.addr
	}
	if a.helo != "" {
		s.xclientHelo = a.helo
	}
	s.fwd = mailauth.Hop{}
	s.log.Info("client named by a trusted relay", "event", "xclient", "trusted", s.trustedRelay())
	return &gosmtp.SMTPError{Code: 220, EnhancedCode: gosmtp.NoEnhancedCode, Message: s.r.opts.Hostname + " ESMTP"}
}

// xAttrs are the attributes of XFORWARD and XCLIENT that the check uses;
// the others (NAME, PORT, PROTO, IDENT, SOURCE, LOGIN, DESTADDR, DESTPORT)
// are accepted and not used.
type xAttrs struct {
	addr netip.Addr
	helo string
}

// knownXAttrs are the attribute names of XFORWARD and XCLIENT.
var knownXAttrs = map[string]bool{"NAME": true, "ADDR": true, "PORT": true, "PROTO": true, "HELO": true,
	"IDENT": true, "SOURCE": true, "LOGIN": true, "DESTADDR": true, "DESTPORT": true}

// parseXAttrs parses "NAME=value ..." with xtext values (RFC 3461 §4).
// "[UNAVAILABLE]" and "[TEMPUNAVAIL]" mean the relay does not know. An
// unknown name, a pair without "=", bad xtext or an ADDR that is not an IP
// is errXBadAttribute.
func parseXAttrs(arg string) (xAttrs, error) {
	var a xAttrs
	words := strings.Fields(arg)
	if len(words) == 0 {
		return a, errXBadAttribute
	}
	for _, w := range words {
		name, raw, ok := strings.Cut(w, "=")
		name = strings.ToUpper(name)
		if !ok || !knownXAttrs[name] {
			return a, errXBadAttribute
		}
		v, ok := xtextDecode(raw)
		if !ok {
			return a, errXBadAttribute
		}
		if v == "[UNAVAILABLE]" || v == "[TEMPUNAVAIL]" {
			continue
		}
		switch name {
		case "ADDR":
			ip, err := netip.ParseAddr(strings.TrimPrefix(strings.TrimPrefix(v, "IPV6:"), "IPv6:"))
			if err != nil {
				return a, errXBadAttribute
			}
			a.addr = ip.Unmap()
		case "HELO":
			a.helo = sanitizeHelo(v)
		}
	}
	return a, nil
}

// xtextDecode decodes xtext (RFC 3461 §4): "+" and two upper-case hex
// digits stand for a byte; printable ASCII but "+" and "=" stands for
// itself.
func xtextDecode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+3 > len(s) {
				return "", false
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(n))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
