package smtp

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// The harness client connects from 127.0.0.1: trusting 127.0.0.1/32 makes
// it a company gateway. example.org (authDNS) authorizes only 192.0.2.1
// and publishes p=reject, so its unsigned mail passes only when SPF is
// judged for 192.0.2.1.
var loopbackRelay = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// gatewayHop is the Received field a Postfix gateway writes for a
// customer's server at ip.
func gatewayHop(ip string) string {
	return "Received: from mx.example.org (unknown [" + ip + "])\r\n\tby gw.company.example (Postfix) with ESMTPS id 4B1;\r\n\tMon, 02 Jun 2025 10:00:00 +0000\r\n"
}

func relayHarness(t *testing.T, relays []netip.Prefix, ids ...string) *harness {
	z := authDNS(t)
	return authHarness(t, z.Addr, func(o *harnessOpts) {
		o.trustedRelays = relays
		o.trustedIDs = ids
	})
}

// TestInboundTrustedRelaySPF: through a trusted gateway SPF is judged for
// the first untrusted hop of the gateway's Received field, reported with
// smtp.remote-ip and policy.trusted-relay; the same field from an
// untrusted client is not believed (SPF fails for 127.0.0.1, DMARC
// p=reject refuses).
func TestInboundTrustedRelaySPF(t *testing.T) {
	tests := []struct {
		name    string
		relays  []netip.Prefix
		origin  string
		want    string // DATA reply prefix
		spfPass bool
	}{
		{"trusted, authorized origin", loopbackRelay, "192.0.2.1", "250", true},
		{"trusted, unauthorized origin", loopbackRelay, "198.51.100.7", "550 5.7.1", false},
		{"untrusted client, forged hop", nil, "192.0.2.1", "550 5.7.1", false},
		{"other network trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "192.0.2.1", "550 5.7.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := relayHarness(t, tt.relays)
			r := sendInbound(h, "bob.roe@example.org", gatewayHop(tt.origin)+dmarcFailMsg)
			if !strings.HasPrefix(r, tt.want) {
				t.Fatalf("DATA: %s, want %s", r, tt.want)
			}
			if !tt.spfPass {
				if n := len(h.ds.Stats().Messages); n != 0 {
					t.Fatalf("relayed %d messages", n)
				}
				return
			}
			ar := arFields(relayedOne(t, h))
			if len(ar) == 0 || !strings.Contains(ar[0], "spf=pass") || !strings.Contains(ar[0], "smtp.remote-ip=192.0.2.1") ||
				!strings.Contains(ar[0], "policy.trusted-relay=127.0.0.1") || !strings.Contains(ar[0], "dmarc=pass") {
				t.Fatalf("Authentication-Results: %q", ar)
			}
			h.checkLogs()
		})
	}
}

// TestInboundTrustedRelayNoHop: a trusted relay whose Received field is
// missing is judged spf=none with a reason, never for its own IP, and the
// p=reject domain's unsigned mail is refused.
func TestInboundTrustedRelayNoHop(t *testing.T) {
	z := authDNS(t)
	h := authHarness(t, z.Addr, func(o *harnessOpts) {
		o.trustedRelays = loopbackRelay
		o.auth.TagDMARCReject = true
	})
	if r := sendInbound(h, "jane.doe@example.com", crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	ar := arFields(relayedOne(t, h))
	if len(ar) == 0 || !strings.Contains(ar[0], "spf=none reason=") || strings.Contains(ar[0], "smtp.remote-ip") ||
		!strings.Contains(ar[0], "dmarc=fail") {
		t.Fatalf("Authentication-Results: %q", ar)
	}
}

// TestInboundXForward: XFORWARD is announced to and accepted from a trusted
// relay only (550 5.7.0 otherwise, Postfix's answer); its ADDR is the hop
// SPF judges; it is refused inside a transaction and with a bad attribute.
func TestInboundXForward(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		h := relayHarness(t, nil)
		c := h.dial(h.in)
		if r := c.must("250", "EHLO "+authHelo); strings.Contains(r, "XFORWARD") || strings.Contains(r, "XCLIENT") {
			t.Fatalf("EHLO to an untrusted client: %s", r)
		}
		c.must("550 5.7.0", "XFORWARD ADDR=192.0.2.1 HELO=mx.example.org")
		c.must("550 5.7.0", "XCLIENT ADDR=192.0.2.1")
		c.must("250", "MAIL FROM:<bob.roe@example.org>")
		c.must("250", "RCPT TO:<support@company.example>")
		if r := c.data(dmarcFailMsg); !strings.HasPrefix(r, "550 5.7.1") {
			t.Fatalf("DATA after a refused XFORWARD: %s", r)
		}
		if !strings.Contains(h.logs.String(), `"event":"xcommand_refused"`) {
			t.Errorf("no log line for the refused XFORWARD")
		}
	})
	t.Run("trusted", func(t *testing.T) {
		h := relayHarness(t, loopbackRelay)
		c := h.dial(h.in)
		if r := c.must("250", "EHLO gw.company.example"); !strings.Contains(r, "XFORWARD NAME ADDR") {
			t.Fatalf("EHLO to a trusted relay: %s", r)
		}
		c.must("501 5.5.4", "XFORWARD FOO=bar")
		c.must("501 5.5.4", "XFORWARD ADDR=not-an-ip")
		c.must("501 5.5.4", "XFORWARD ADDR")
		c.must("250", "XFORWARD NAME=mx.example.org ADDR=192.0.2.1 PORT=25")
		c.must("250", "XFORWARD HELO=mx.example.org PROTO=ESMTP SOURCE=REMOTE IDENT=[UNAVAILABLE]")
		c.must("250", "MAIL FROM:<bob.roe@example.org>")
		c.must("503 5.5.1", "XFORWARD ADDR=198.51.100.7")
		c.must("250", "RCPT TO:<support@company.example>")
		// The gateway's Received names another IP: XFORWARD's wins.
		if r := c.data(gatewayHop("198.51.100.7") + dmarcFailMsg); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA: %s", r)
		}
		ar := arFields(relayedOne(t, h))
		if len(ar) == 0 || !strings.Contains(ar[0], "spf=pass") || !strings.Contains(ar[0], "smtp.remote-ip=192.0.2.1") {
			t.Fatalf("Authentication-Results: %q", ar)
		}
		// XFORWARD holds for one transaction: the next one is judged by its
		// Received field again.
		c.must("250", "MAIL FROM:<bob.roe@example.org>")
		c.must("250", "RCPT TO:<support@company.example>")
		if r := c.data(gatewayHop("198.51.100.7") + dmarcFailMsg); !strings.HasPrefix(r, "550 5.7.1") {
			t.Fatalf("DATA of the next transaction: %s", r)
		}
	})
}

// TestInboundXClient: a trusted relay's XCLIENT makes the session the
// client it names (a new 220 greeting): SPF is then judged for that IP
// directly, and the session is no longer trusted.
func TestInboundXClient(t *testing.T) {
	h := relayHarness(t, loopbackRelay)
	c := h.dial(h.in)
	c.must("250", "EHLO gw.company.example")
	c.must("501 5.5.4", "XCLIENT ADDR=192.0.2.1 HELO")
	c.must("220 mx.test", "XCLIENT NAME=mx.example.org ADDR=192.0.2.1 HELO=mx.example.org")
	if r := c.must("250", "EHLO mx.example.org"); strings.Contains(r, "XFORWARD") {
		t.Fatalf("EHLO after XCLIENT still trusted: %s", r)
	}
	c.must("550 5.7.0", "XFORWARD ADDR=192.0.2.1")
	c.must("250", "MAIL FROM:<bob.roe@example.org>")
	c.must("250", "RCPT TO:<support@company.example>")
	if r := c.data(dmarcFailMsg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	ar := arFields(relayedOne(t, h))
	if len(ar) == 0 || !strings.Contains(ar[0], "spf=pass") || strings.Contains(ar[0], "policy.trusted-relay") {
		t.Fatalf("Authentication-Results: %q", ar)
	}
}

// TestInboundTrustedAuthResults: the trusted relay's own
// Authentication-Results stands in when DMARC fails without it, and is
// reported as the local policy that overrode our dmarc=fail (the
// convention of a trusted ARC sealer's override); from an untrusted client the same field is a forgery: not
// believed, and removed before the CRM sees it (RFC 8601 §5).
func TestInboundTrustedAuthResults(t *testing.T) {
	gwAR := "Authentication-Results: gw.company.example; spf=pass smtp.mailfrom=bob.roe@example.org;\r\n dkim=none\r\n"
	t.Run("trusted", func(t *testing.T) {
		h := relayHarness(t, loopbackRelay, "gw.company.example")
		// No Received field: our own SPF is none; the gateway's spf=pass
		// stands in.
		if r := sendInbound(h, "bob.roe@example.org", gwAR+dmarcFailMsg); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA: %s", r)
		}
		ar := arFields(relayedOne(t, h))
		if len(ar) != 2 || !strings.Contains(ar[0], "spf=none") ||
			!strings.Contains(ar[0], "dmarc=fail reason=\"no aligned identifier passed\" header.from=example.org policy.override=trusted_forwarder policy.trusted-authres=gw.company.example") ||
			!strings.HasPrefix(ar[1], "Authentication-Results: gw.company.example;") {
			t.Fatalf("Authentication-Results: %q", ar)
		}
		if strings.Contains(ar[1], "bob.roe") {
			t.Errorf("the gateway's field names the customer: %s", ar[1])
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		h := relayHarness(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "gw.company.example")
		if r := sendInbound(h, "bob.roe@example.org", gwAR+dmarcFailMsg); !strings.HasPrefix(r, "550 5.7.1") {
			t.Fatalf("DATA: %s", r)
		}
		z := authDNS(t)
		h = authHarness(t, z.Addr, func(o *harnessOpts) {
			o.trustedRelays = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			o.trustedIDs = []string{"gw.company.example"}
			o.auth.TagDMARCReject = true
		})
		if r := sendInbound(h, "bob.roe@example.org", gwAR+dmarcFailMsg); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA (tag): %s", r)
		}
		ar := arFields(relayedOne(t, h))
		if len(ar) != 1 || strings.Contains(ar[0], "gw.company.example") || !strings.Contains(ar[0], "dmarc=fail") {
			t.Fatalf("Authentication-Results: %q", ar)
		}
	})
	t.Run("untrusted, check disabled", func(t *testing.T) {
		h := newHarness(t, func(o *harnessOpts) {
			o.trustedRelays = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			o.trustedIDs = []string{"gw.company.example"}
		})
		if r := sendInbound(h, "bob.roe@example.org", gwAR+dmarcFailMsg); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA: %s", r)
		}
		if ar := arFields(relayedOne(t, h)); len(ar) != 0 {
			t.Fatalf("a forged gateway field reached the CRM: %q", ar)
		}
	})
}

// TestInboundRelayDomainSenderTrusted: a trusted relay may use a relay
// domain sender (issue 18 item 8's exception); anyone else gets 550 5.7.1
// (TestInboundRelayDomainSenderRefused).
func TestInboundRelayDomainSenderTrusted(t *testing.T) {
	for _, tt := range []struct {
		name   string
		relays []netip.Prefix
		want   string
	}{
		{"trusted", loopbackRelay, "250"},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "550 5.7.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *harnessOpts) { o.trustedRelays = tt.relays })
			tok := h.token("jane.doe@example.com")
			c := h.dial(h.in)
			c.must("250", "EHLO gw.company.example")
			c.must(tt.want, "MAIL FROM:<%s>", tok)
			if tt.want != "250" {
				return
			}
			c.must("250", "RCPT TO:<support@company.example>")
			if r := c.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
				t.Fatalf("DATA: %s", r)
			}
		})
	}
}

// TestInboundPostmaster: RFC 5321 §4.5.1 postmaster, bare or at the relay
// domain or a mailbox domain, goes to the configured mailbox; without one,
// or at another domain, it is refused like any recipient.
func TestInboundPostmaster(t *testing.T) {
	// The CRM intake refuses its own mailbox: only the postmaster mailbox
	// can take the message.
	sink := &downstreamtest.Sink{RcptErr: map[string]error{"support@crm.example": &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no"}}}
	h := newHarness(t, func(o *harnessOpts) {
		o.postmaster = "it-mail@company.example"
		o.ds = sink
	})
	domain := strings.SplitN(h.token("x@example.com"), "@", 2)[1]
	for i, rcpt := range []string{"Postmaster", "postmaster@" + domain, "POSTMASTER@company.example"} {
		c := h.dial(h.in)
		c.must("250", "EHLO "+authHelo)
		c.must("250", "MAIL FROM:<>")
		c.must("250", "RCPT TO:<%s>", rcpt)
		if r := c.data(crlf("From: MAILER-DAEMON@mail.example.com\nTo: postmaster\nSubject: bounce\n\nfor jane.doe@example.com\n")); !strings.HasPrefix(r, "250") {
			t.Fatalf("%s: DATA: %s", rcpt, r)
		}
		if n := len(h.ds.Stats().Messages); n != i+1 {
			t.Fatalf("%s: %d messages delivered", rcpt, n)
		}
	}
	c := h.dial(h.in)
	c.must("250", "EHLO "+authHelo)
	c.must("250", "MAIL FROM:<>")
	c.must("550 5.7.1", "RCPT TO:<postmaster@elsewhere.example>")
	c.must("550 5.7.1", "RCPT TO:<postmasters@company.example>")
	for _, m := range h.ds.Stats().Messages {
		if strings.Contains(m, "jane.doe@example.com") {
			t.Errorf("postmaster mail reached the mailbox untokenized:\n%s", m)
		}
	}

	// No postmaster configured: refused as before.
	h = newHarness(t, nil)
	c = h.dial(h.in)
	c.must("250", "EHLO "+authHelo)
	c.must("250", "MAIL FROM:<>")
	c.must("550 5.7.1", "RCPT TO:<Postmaster>")
	n := 0
	h.m.Each(context.Background(), func(tokenize.Entry) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d tokens after a refused postmaster message", n)
	}
}

// TestParseXAttrs: xtext values (RFC 3461 §4), Postfix's special values,
// IPv6 addresses as Postfix writes them.
func TestParseXAttrs(t *testing.T) {
	tests := []struct {
		arg  string
		addr string // "" : none
		helo string
		ok   bool
	}{
		{"ADDR=192.0.2.1 HELO=mx.example.org", "192.0.2.1", "mx.example.org", true},
		{"addr=IPV6:2001:db8::1", "2001:db8::1", "", true},
		{"ADDR=[UNAVAILABLE] HELO=[TEMPUNAVAIL]", "", "", true},
		{"HELO=mx+2Eexample.org", "", "mx.example.org", true},
		{"HELO=bad+2", "", "", false},
		{"HELO=bad+ZZ", "", "", false},
		{"NAME", "", "", false},
		{"COLOR=red", "", "", false},
		{"", "", "", false},
		{"ADDR=::ffff:192.0.2.1", "192.0.2.1", "", true},
	}
	for _, tt := range tests {
		a, err := parseXAttrs(tt.arg)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok %v", tt.arg, err, tt.ok)
			continue
		}
		want := mailauth.Hop{Helo: tt.helo}
		if tt.addr != "" {
			want.IP = netip.MustParseAddr(tt.addr)
		}
		if tt.ok && (a.addr != want.IP || a.helo != want.Helo) {
			t.Errorf("%q: got %+v, want %+v", tt.arg, a, want)
		}
	}
}

// FuzzParseXAttrs: XFORWARD/XCLIENT arguments never panic the session.
func FuzzParseXAttrs(f *testing.F) {
	for _, s := range []string{"ADDR=192.0.2.1 HELO=mx+2Eexample", "HELO=+", "ADDR=IPV6:::1", "NAME=[UNAVAILABLE]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := parseXAttrs(s); err == nil && strings.ContainsAny(a.helo, " \r\n()") {
			t.Fatalf("%q: HELO %q not sanitized", s, a.helo)
		}
	})
}
