package mailauth

import (
	"context"
	"net/netip"
	"strings"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
)

// maxRelayHops bounds the Received fields walked through trusted relays: a
// company's own plumbing has a handful of hops, and a longer walk only
// costs time.
const maxRelayHops = 20

// Hop is one SMTP hop as the server that received it saw it: the client's
// IP and HELO name.
type Hop struct {
	IP   netip.Addr
	Helo string
}

// Trust is what the inbound check believes beyond the connecting client.
// The zero Trust believes nothing: SPF and HELO are judged for the
// connecting client, and no other service's results count.
type Trust struct {
	// Relays are the networks of trusted relays (a company gateway). For a
	// client in them, SPF and HELO are judged for the first hop not in
	// them, read from the Received fields the relays wrote (walked from
	// the top) or from the relay's XFORWARD.
	Relays []netip.Prefix
	// AuthservIDs name trusted relays' own Authentication-Results fields
	// (RFC 8601 §2.5). On a connection from a trusted relay the topmost
	// such field may stand in for the SPF and DKIM results that the
	// forwarding broke (standin.go). From anyone else such a field is a
	// forgery (RFC 8601 §5): never read, and removed by the route.
	AuthservIDs []string
}

// IsRelay reports whether ip is in a trusted relay network.
func (t Trust) IsRelay(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range t.Relays {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// RelayVerdict says how a trusted relay changed what was checked: the
// message came from Relay, and SPF and HELO were judged for Origin.
type RelayVerdict struct {
	Relay netip.Addr // the trusted relay that connected
	// Origin is the first untrusted hop; its IP is invalid when none could
	// be read, and SPF is then none (never the relay's own IP).
	Origin Hop
	// Reason says why Origin is unknown; fixed text, no data of the
	// message.
	Reason string
}

// judgedHop returns the hop that SPF and the HELO check apply to. For a
// client that is not a trusted relay it is the client itself and rv is
// nil. For a trusted relay it is the first untrusted hop: given by the
// relay's XFORWARD (in.Forwarded) or read from the Received fields.
func judgedHop(in VerifyInput, fields []field) (Hop, *RelayVerdict) {
	client, _ := netip.AddrFromSlice(in.ClientIP)
	client = client.Unmap()
	hop := Hop{IP: client, Helo: in.Helo}
	if !in.Trust.IsRelay(client) {
		return hop, nil
	}
	rv := &RelayVerdict{Relay: client}
	received := fieldsNamed(fields, "Received")
	if in.Forwarded.IP.IsValid() {
		// XFORWARD describes the hop the topmost Received field records:
		// the walk goes on below that field.
		hop = Hop{IP: in.Forwarded.IP.Unmap(), Helo: in.Forwarded.Helo}
		if len(received) > 0 {
			received = received[1:]
		}
	}
	rv.Origin, rv.Reason = walkReceived(hop, received, in.Trust)
	return rv.Origin, rv
}

// walkReceived follows the Received fields from the top while the hop in
// hand is a trusted relay: the field below was written by that relay and
// names its own client. It stops at the first untrusted hop. A malformed
// field, or running out of fields while still trusted, gives no hop:
// nothing a field says is believed unless a trusted relay wrote it.
func walkReceived(hop Hop, received []field, t Trust) (Hop, string) {
	for i := 0; t.IsRelay(hop.IP); i++ {
		if i >= len(received) || i >= maxRelayHops {
			return Hop{}, "no untrusted hop in Received"
		}
		next, ok := parseReceived(received[i].value())
		if !ok {
			return Hop{}, "malformed Received field of a trusted relay"
		}
		hop = next
	}
	return hop, ""
}

// parseReceived reads the from clause of a Received field (RFC 5321
// §4.4: "from" Extended-Domain): the client's HELO and IP, in the forms
// the usual MTAs write:
//
//	from helo.example (rdns.example [192.0.2.1])        Postfix, Sendmail, tokenproxy
//	from helo.example ([IPv6:2001:db8::1])
//	from helo.example (192.0.2.1) by ...                 Exchange, Exchange Online
//	from rdns.example ([192.0.2.1] helo=helo.example)    Exim
//	from [192.0.2.1] (helo=helo.example)                 Exim
//
// An IP in the comment wins over an address literal as HELO (Postfix:
// "from [192.0.2.9] (unknown [192.0.2.1])" was HELO [192.0.2.9] from
// 192.0.2.1). ok is false when the field has no from clause or no IP.
func parseReceived(value string) (Hop, bool) {
	rest, ok := cutPrefixFold(strings.TrimSpace(value), "from ")
	if !ok {
		return Hop{}, false
	}
	rest = strings.TrimLeft(rest, " \t")
	end := strings.IndexAny(rest, " \t(;")
	if end < 0 {
		return Hop{}, false
	}
	helo, clause := rest[:end], fromComment(rest[end:])
	ip, ok := commentIP(clause)
	if !ok {
		ip, ok = literalIP(helo)
	}
	if !ok {
		return Hop{}, false
	}
	if h := heloParam(clause); h != "" {
		helo = h
	}
	return Hop{IP: ip, Helo: helo}, true
}

// fromComment returns the text of the comment that follows the from
// domain, "" when there is none.
func fromComment(s string) string {
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "(") {
		return ""
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return ""
	}
	return s[1:end]
}

// commentIP finds the client IP in a from clause's comment: a bracketed
// literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"), else a bare IP word
// (Exchange's "(192.0.2.1)").
func commentIP(c string) (netip.Addr, bool) {
	words := strings.FieldsFunc(c, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	for _, w := range words {
		if ip, ok := literalIP(w); ok {
			return ip, true
		}
	}
	for _, w := range words {
		if ip, err := netip.ParseAddr(w); err == nil {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// literalIP parses an address literal (RFC 5321 §4.1.3): "[192.0.2.1]" or
// "[IPv6:2001:db8::1]".
func literalIP(s string) (netip.Addr, bool) {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return netip.Addr{}, false
	}
	s = s[1 : len(s)-1]
	if v6, ok := cutPrefixFold(s, "IPv6:"); ok {
		s = v6
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// heloParam returns Exim's "helo=NAME" from a comment, "" without one.
func heloParam(c string) string {
	for _, w := range strings.Fields(c) {
		if h, ok := cutPrefixFold(w, "helo="); ok {
			return h
		}
	}
	return ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// startSPFFor starts the SPF check of the hop judged. A trusted relay whose
// origin could not be read gets none: the relay's own IP is never checked
// in its place, and nothing unread is believed.
func startSPFFor(ctx context.Context, r *Resolver, in VerifyInput, hop Hop, rv *RelayVerdict) <-chan []SPFVerdict {
	if rv == nil {
		return startSPF(ctx, r, in)
	}
	if !hop.IP.IsValid() {
		done := make(chan []SPFVerdict, 1)
		done <- []SPFVerdict{{Result: ResultNone, Identity: "mailfrom", MailFrom: in.MailFrom,
			Domain: orgdomain.Normalize(domainOf(in.MailFrom))}}
		return done
	}
	in.ClientIP, in.Helo = hop.IP.AsSlice(), hop.Helo
	return startSPF(ctx, r, in)
}

// addParams adds to our SPF result what the CRM needs to tell a relayed
// verdict from a direct one: the IP SPF judged (smtp.remote-ip, the
// original hop's) and the trusted relay it came through
// (policy.trusted-relay), or why no hop could be judged (reason).
func (rv *RelayVerdict) addParams(params map[string]string) {
	if rv == nil {
		return
	}
	params["policy.trusted-relay"] = rv.Relay.String()
	if rv.Origin.IP.IsValid() {
		params["smtp.remote-ip"] = rv.Origin.IP.String()
	} else {
		params["reason"] = rv.Reason
	}
}
