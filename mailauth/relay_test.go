package mailauth

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

func TestParseReceived(t *testing.T) {
	tests := []struct {
		name, value string
		ip, helo    string // ip "" : not parsed
	}{
		{"postfix", "from mx.sender.example (mx.sender.example [192.0.2.1])\tby gw.company.example (Postfix) with ESMTP id 4B; Mon, 2 Jun 2025 10:00:00 +0000", "192.0.2.1", "mx.sender.example"},
		{"postfix unknown rdns", "from helo.example (unknown [192.0.2.1]) by gw (Postfix) with ESMTPS id X", "192.0.2.1", "helo.example"},
		{"postfix literal helo", "from [192.0.2.9] (unknown [192.0.2.1]) by gw (Postfix) with ESMTP id X", "192.0.2.1", "[192.0.2.9]"},
		{"ipv6", "from helo.example (unknown [IPv6:2001:db8::1]) by gw with ESMTP id X", "2001:db8::1", "helo.example"},
		{"tokenproxy", "from helo.example ([192.0.2.1])\tby mx.company.example (tokenproxy) with ESMTPS id abc.1;", "192.0.2.1", "helo.example"},
		{"exchange", "from mail.sender.example (192.0.2.1) by EXCH01.corp.example (10.0.0.6) with Microsoft SMTP Server (version=TLS1_2) id 15.1.2507.6; Mon, 2 Jun 2025", "192.0.2.1", "mail.sender.example"},
		{"exchange online v6", "from DM6PR01.prod.outlook.com (2603:10b6:5:1::1) by BN1.outlook.com (2603:10b6:5:2::2) with Microsoft SMTP Server", "2603:10b6:5:1::1", "DM6PR01.prod.outlook.com"},
		{"exim", "from rdns.example ([192.0.2.1] helo=helo.example) by mx with esmtps (TLS1.3) id 1abc", "192.0.2.1", "helo.example"},
		{"exim literal", "from [192.0.2.1] (helo=helo.example) by mx with esmtp id 1abc", "192.0.2.1", "helo.example"},
		{"upper case", "FROM helo.example (unknown [192.0.2.1]) BY gw", "192.0.2.1", "helo.example"},
		{"no from clause", "by gw.company.example (Postfix, from userid 0) id 4B; Mon, 2 Jun 2025", "", ""},
		{"no ip", "from helo.example (helo.example) by gw with ESMTP id X", "", ""},
		{"bad literal", "from helo.example (unknown [999.0.2.1]) by gw", "", ""},
		{"empty", "", "", ""},
		{"from only", "from", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop, ok := parseReceived(tt.value)
			if tt.ip == "" {
				if ok {
					t.Fatalf("parsed %+v, want no hop", hop)
				}
				return
			}
			if !ok || hop.IP != netip.MustParseAddr(tt.ip) || hop.Helo != tt.helo {
				t.Fatalf("got %+v %v, want %s %s", hop, ok, tt.ip, tt.helo)
			}
		})
	}
}

// relayedMessage is testMessage with Received fields on top (each a line).
func relayedMessage(from string, received ...string) []byte {
	var b strings.Builder
	for _, r := range received {
		b.WriteString("Received: " + r + "\r\n")
	}
	return append([]byte(b.String()), testMessage(from)...)
}

func TestVerifyTrustedRelay(t *testing.T) {
	z := dnstest.Start(t)
	z.TXT("customer.example", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	trust := Trust{Relays: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}
	gw := "by gw.company.example (Postfix) with ESMTP id X; Mon, 2 Jun 2025 10:00:00 +0000"
	inner := "from gw2.corp (gw2.corp [10.0.0.2]) " + gw

	tests := []struct {
		name      string
		client    string
		trust     Trust
		forwarded Hop
		received  []string
		spf       Result
		origin    string // "" : no relay verdict; "-" : origin unknown
	}{
		{"direct, authorized", "192.0.2.1", trust, Hop{}, nil, ResultPass, ""},
		{"direct from the gateway IP, no trust", "10.0.0.1", Trust{}, Hop{}, []string{"from mx.customer.example (unknown [192.0.2.1]) " + gw}, ResultFail, ""},
		{"relayed, authorized origin", "10.0.0.1", trust, Hop{}, []string{"from mx.customer.example (unknown [192.0.2.1]) " + gw}, ResultPass, "192.0.2.1"},
		{"relayed, unauthorized origin", "10.0.0.1", trust, Hop{}, []string{"from mx.customer.example (unknown [198.51.100.7]) " + gw}, ResultFail, "198.51.100.7"},
		{"two trusted hops", "10.0.0.1", trust, Hop{}, []string{inner, "from mx.customer.example (unknown [192.0.2.1]) " + gw}, ResultPass, "192.0.2.1"},
		// A hop below the first untrusted one is the sender's own claim.
		{"forged hop below the origin", "10.0.0.1", trust, Hop{}, []string{"from mx.evil.example (unknown [198.51.100.7]) " + gw, "from mx.customer.example (unknown [192.0.2.1]) " + gw}, ResultFail, "198.51.100.7"},
		{"untrusted client's forged Received", "198.51.100.7", trust, Hop{}, []string{"from mx.customer.example (unknown [192.0.2.1]) " + gw}, ResultFail, ""},
		{"malformed field", "10.0.0.1", trust, Hop{}, []string{"by gw.company.example with local id X"}, ResultNone, "-"},
		{"no field", "10.0.0.1", trust, Hop{}, nil, ResultNone, "-"},
		{"only trusted hops", "10.0.0.1", trust, Hop{}, []string{inner}, ResultNone, "-"},
		{"xforward", "10.0.0.1", trust, Hop{IP: netip.MustParseAddr("192.0.2.1"), Helo: "mx.customer.example"}, []string{"from whatever (unknown [198.51.100.7]) " + gw}, ResultPass, "192.0.2.1"},
		{"xforward from an untrusted client ignored", "198.51.100.7", trust, Hop{IP: netip.MustParseAddr("192.0.2.1")}, nil, ResultFail, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := VerifyInput{ClientIP: net.ParseIP(tt.client), Helo: "gw.company.example", MailFrom: "jane@customer.example",
				Trust: tt.trust, Forwarded: tt.forwarded}
			v := verify(t, z, in, relayedMessage("jane@customer.example", tt.received...))
			if v.SPF[0].Result != tt.spf {
				t.Errorf("spf = %s, want %s", v.SPF[0].Result, tt.spf)
			}
			ar := v.AuthenticationResults("mx.company.example", nil)
			switch tt.origin {
			case "":
				if v.Relay != nil || strings.Contains(ar, "policy.trusted-relay") {
					t.Errorf("relay verdict %+v for a direct client: %s", v.Relay, ar)
				}
			case "-":
				if v.Relay == nil || v.Relay.Origin.IP.IsValid() || !strings.Contains(ar, `reason=`) || strings.Contains(ar, "smtp.remote-ip") {
					t.Errorf("relay verdict %+v, want no origin: %s", v.Relay, ar)
				}
			default:
				want := "smtp.remote-ip=" + tt.origin
				if v.Relay == nil || v.Relay.Origin.IP.String() != tt.origin || !strings.Contains(ar, want) ||
					!strings.Contains(ar, "policy.trusted-relay="+tt.client) {
					t.Errorf("relay verdict %+v: %s, want %s", v.Relay, ar, want)
				}
			}
			if tt.spf != ResultPass && v.DMARC.Result != ResultFail {
				t.Errorf("dmarc = %s, want fail (p=reject, unsigned)", v.DMARC.Result)
			}
		})
	}
}

func TestVerifyTrustedAuthResults(t *testing.T) {
	z := dnstest.Start(t)
	z.TXT("customer.example", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	relays := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	trust := Trust{Relays: relays, AuthservIDs: []string{"gw.company.example"}}
	// The gateway could not judge SPF for the origin (no Received we read),
	// but its own field says SPF and DKIM passed.
	gwAR := "Authentication-Results: gw.company.example; spf=pass (sender SPF authorized) smtp.mailfrom=jane@customer.example;\r\n" +
		"\tdkim=pass (2048-bit key) header.d=customer.example header.i=@customer.example\r\n"
	tests := []struct {
		name   string
		client string
		trust  Trust
		ar     string
		via    bool
	}{
		{"trusted relay, trusted field", "10.0.0.1", trust, gwAR, true},
		{"trusted relay, id not trusted", "10.0.0.1", Trust{Relays: relays, AuthservIDs: []string{"other.example"}}, gwAR, false},
		{"untrusted client, forged field", "198.51.100.7", trust, gwAR, false},
		{"trusted relay, field of another domain", "10.0.0.1", trust,
			"Authentication-Results: gw.company.example; spf=pass smtp.mailfrom=x@other.example; dkim=pass header.d=other.example\r\n", false},
		{"trusted relay, field says fail", "10.0.0.1", trust,
			"Authentication-Results: gw.company.example; spf=fail smtp.mailfrom=jane@customer.example; dkim=fail header.d=customer.example\r\n", false},
		{"trusted relay, unparsable field", "10.0.0.1", trust,
			"Authentication-Results: gw.company.example; spf pass smtp.mailfrom=jane@customer.example\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := append([]byte(tt.ar), testMessage("jane@customer.example")...)
			in := VerifyInput{ClientIP: net.ParseIP(tt.client), Helo: "gw.company.example", MailFrom: "jane@customer.example", Trust: tt.trust}
			v := verify(t, z, in, msg)
			// Our own checks' DMARC stays fail; the relay's vouching is the
			// local policy that overrides it (RFC 7489 §6.7), one convention
			// with a trusted ARC sealer's.
			if v.DMARC.Result != ResultFail || v.DMARCReject() == tt.via || (v.DMARC.AuthresOverride != "") != tt.via {
				t.Errorf("dmarc = %s, override %q, reject %v; want fail, overridden %v", v.DMARC.Result, v.DMARC.AuthresOverride, v.DMARCReject(), tt.via)
			}
			for _, s := range v.SPF {
				if s.Result == ResultPass {
					t.Errorf("the relay's spf=pass is reported as ours: %+v", s)
				}
			}
			ar := v.AuthenticationResults("mx.company.example", nil)
			want := "dmarc=fail reason=\"no aligned identifier passed\" header.from=customer.example policy.override=trusted_forwarder policy.trusted-authres=gw.company.example"
			if got := strings.Contains(ar, want); got != tt.via {
				t.Errorf("stand-in reported %v, want %v: %s", got, tt.via, ar)
			}
			if strings.Count(ar, "policy.trusted-authres") > 1 {
				t.Errorf("the stand-in is reported beside our own results: %s", ar)
			}
		})
	}
}

// FuzzParseReceived: any field value parses or not, never panics, and a
// hop it returns has a valid IP.
func FuzzParseReceived(f *testing.F) {
	for _, s := range []string{
		"from mx.example (unknown [192.0.2.1]) by gw (Postfix) with ESMTP id X",
		"from [192.0.2.1] (helo=x)", "from x (2001:db8::1) by y", "from (", "from x ([IPv6:", "from x (helo= [",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if hop, ok := parseReceived(s); ok && !hop.IP.IsValid() {
			t.Fatalf("%q: hop without IP", s)
		}
	})
}
