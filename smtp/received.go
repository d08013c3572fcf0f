package smtp

import (
	"strings"
	"time"
)

// received is the trace field this hop adds (RFC 5321 §4.4: a relay
// must add one). It names the client's HELO and IP and our host, and the
// protocol per RFC 3848 (ESMTPS after STARTTLS, ESMTPSA with AUTH). It has
// no "for" clause: that would name the recipient, and on the outbound
// route the recipient is the customer.
func (s *session) received() string {
	proto := "ESMTP"
	if s.isTLS() {
		proto += "S"
	}
	if s.user != "" {
		proto += "A"
	}
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(s.c.Hostname()))
	if s.ip.IsValid() {
		b.WriteString(" ([")
		if s.ip.Is6() {
			b.WriteString("IPv6:")
		}
		b.WriteString(s.ip.String())
		b.WriteString("])")
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(s.r.opts.Hostname)
	b.WriteString(" (tokenproxy) with ")
	b.WriteString(proto)
	b.WriteString(" id ")
	b.WriteString(s.ref())
	b.WriteString(";\r\n\t")
	b.WriteString(time.Now().Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// sanitizeHelo keeps the HELO argument to the characters of a domain or
// address literal, so a hostile client cannot inject header syntax.
func sanitizeHelo(h string) string {
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '-', r == '[', r == ']', r == ':', r == '_':
			b.WriteRune(r)
		}
		if b.Len() >= 255 {
			break
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}
