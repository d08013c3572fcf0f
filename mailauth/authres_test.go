package mailauth

import (
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/tokenproxy/tokenproxy/test/dnstest"
)

const ourID = "mx.company.example"

func TestStripAuthResults(t *testing.T) {
	const (
		subject = "Subject: hello\r\n"
		other   = "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=jane@example.com\r\n"
		body    = "\r\nAuthentication-Results: mx.company.example; in the body, kept\r\n"
	)
	tests := []struct {
		name    string
		in      string
		want    string
		removed int
	}{
		{"simple", subject + "Authentication-Results: mx.company.example; spf=pass\r\n" + other, subject + other, 1},
		{"case-insensitive id and name", "authentication-results: MX.Company.Example; none\r\n" + subject, subject, 1},
		{"space before the colon", "Authentication-Results : mx.company.example; none\r\n" + subject, subject, 1},
		{"no space before ;", "Authentication-Results: mx.company.example;spf=pass\r\n" + subject, subject, 1},
		{"id alone", "Authentication-Results: mx.company.example\r\n" + subject, subject, 1},
		{"folded before the id", "Authentication-Results:\r\n\tmx.company.example;\r\n dkim=pass header.d=example.com\r\n" + subject, subject, 1},
		{"folded after the id", subject + "Authentication-Results: mx.company.example;\r\n  spf=pass\r\n  smtp.mailfrom=a@example.com\r\n" + other, subject + other, 1},
		{"comment before the id", "Authentication-Results: (forged by a spammer) mx.company.example; dmarc=pass\r\n" + subject, subject, 1},
		{"nested, folded comment with quoted pair", "Authentication-Results: (a (b \\) c)\r\n d) mx.company.example 1; none\r\n" + subject, subject, 1},
		{"quoted id", "Authentication-Results: \"mx.company.example\"; none\r\n" + subject, subject, 1},
		{"version after the id", "Authentication-Results: mx.company.example 1; none\r\n" + subject, subject, 1},
		{"several ours", "Authentication-Results: mx.company.example; a\r\n" + other + "Authentication-Results: mx.company.example; b\r\n", other, 2},
		{"other id kept", other + subject, other + subject, 0},
		{"longer id kept", "Authentication-Results: mx.company.example.evil.test; none\r\n", "Authentication-Results: mx.company.example.evil.test; none\r\n", 0},
		{"id inside a comment kept", "Authentication-Results: (mx.company.example) mx.other.example; none\r\n", "Authentication-Results: (mx.company.example) mx.other.example; none\r\n", 0},
		{"ARC-Authentication-Results kept", "ARC-Authentication-Results: i=1; mx.company.example; none\r\n", "ARC-Authentication-Results: i=1; mx.company.example; none\r\n", 0},
		{"other field mentioning it kept", "X-Note: Authentication-Results: mx.company.example\r\n", "X-Note: Authentication-Results: mx.company.example\r\n", 0},
		{"body untouched", "Authentication-Results: mx.company.example; none\r\n" + subject + body, subject + body, 1},
		{"LF line ends", "Authentication-Results: mx.company.example;\n spf=pass\nSubject: x\n\nbody\n", "Subject: x\n\nbody\n", 1},
		{"no final line end", subject + "Authentication-Results: mx.company.example; none", subject, 1},
		{"unterminated comment kept", "Authentication-Results: (mx.company.example; none\r\n", "Authentication-Results: (mx.company.example; none\r\n", 0},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := StripAuthResults([]byte(tt.in), ourID)
			if string(got) != tt.want || n != tt.removed {
				t.Errorf("StripAuthResults(%q)\n = %q, %d\nwant %q, %d", tt.in, got, n, tt.want, tt.removed)
			}
		})
	}
}

func TestAuthenticationResults(t *testing.T) {
	tokenize := func(addr string) string {
		if addr == "jane@customer.example" {
			return "t1-al3wezv2nii3oa24@relay.company.example"
		}
		return "t1-unexpected@relay.company.example"
	}
	pass := DMARCVerdict{Result: ResultPass, FromDomain: "customer.example", PolicyDomain: "customer.example", Policy: PolicyReject, Percent: 100, DKIMAligned: true}
	tests := []struct {
		name     string
		v        Verdicts
		tokenize func(string) string
		want     string
	}{
		{
			name: "all pass",
			v: Verdicts{
				SPF:   []SPFVerdict{{Result: ResultPass, Identity: "mailfrom", Domain: "customer.example", MailFrom: "jane@customer.example"}},
				DKIM:  []DKIMVerdict{{Result: ResultPass, Domain: "customer.example", Selector: "s1", Algorithm: "rsa-sha256", Identifier: "@customer.example"}},
				DMARC: pass,
			},
			tokenize: tokenize,
			want: "mx.company.example; spf=pass smtp.mailfrom=t1-al3wezv2nii3oa24@relay.company.example; " +
				"dkim=pass header.a=rsa-sha256 header.d=customer.example header.i=@customer.example header.s=s1; " +
				"dmarc=pass header.from=customer.example",
		},
		{
			name: "AUID with a local part is tokenized, reasons kept",
			v: Verdicts{
				SPF:   []SPFVerdict{{Result: ResultSoftFail, Identity: "mailfrom", Domain: "customer.example", MailFrom: "jane@customer.example"}},
				DKIM:  []DKIMVerdict{{Result: ResultFail, Domain: "customer.example", Selector: "s1", Algorithm: "ed25519-sha256", Identifier: "jane@customer.example", Reason: "body hash did not verify"}},
				DMARC: DMARCVerdict{Result: ResultFail, FromDomain: "customer.example", Reason: "no aligned identifier passed"},
			},
			tokenize: tokenize,
			want: "mx.company.example; spf=softfail smtp.mailfrom=t1-al3wezv2nii3oa24@relay.company.example; " +
				"dkim=fail reason=\"body hash did not verify\" header.a=ed25519-sha256 header.d=customer.example header.i=t1-al3wezv2nii3oa24@relay.company.example header.s=s1; " +
				"dmarc=fail reason=\"no aligned identifier passed\" header.from=customer.example",
		},
		{
			name: "HELO identity is a domain: kept; nil tokenize keeps domains only",
			v: Verdicts{
				SPF:   []SPFVerdict{{Result: ResultPass, Identity: "helo", Domain: "mx.customer.example"}},
				DKIM:  []DKIMVerdict{{Result: ResultPass, Domain: "customer.example", Selector: "s1", Algorithm: "rsa-sha256", Identifier: "jane@customer.example"}},
				DMARC: pass,
			},
			want: "mx.company.example; spf=pass smtp.helo=mx.customer.example; " +
				"dkim=pass header.a=rsa-sha256 header.d=customer.example header.i=customer.example header.s=s1; " +
				"dmarc=pass header.from=customer.example",
		},
		{
			name:     "nothing to report",
			v:        Verdicts{DMARC: DMARCVerdict{Result: ResultNone, Reason: "no DMARC record"}},
			tokenize: tokenize,
			want:     "mx.company.example; spf=none; dkim=none; dmarc=none reason=\"no DMARC record\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.v.AuthenticationResults(ourID, tt.tokenize)
			if got != tt.want {
				t.Errorf("AuthenticationResults\n = %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "jane") {
				t.Errorf("a customer address leaked: %s", got)
			}
			// What we write, a receiver parses.
			id, results, err := authres.Parse(got)
			if err != nil || id != ourID || len(results) != 3 {
				t.Errorf("authres.Parse = %q, %d results, %v", id, len(results), err)
			}
		})
	}
}

// TestVerifyThenReport runs the inbound sequence end to end: Verify, strip
// forged fields, report with tokenized addresses.
func TestVerifyThenReport(t *testing.T) {
	rsaK, _ := testKeys(t)
	z := dnstest.Start(t)
	publishKey(t, z, "customer.example", "s1", rsaK.Public())
	z.TXT("customer.example", "v=spf1 ip4:192.0.2.1 -all")
	z.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	forged := "Authentication-Results: mx.company.example; dmarc=pass header.from=bank.example\r\n"
	m := signed(t, rsaK, "customer.example", "s1", append([]byte(forged), testMessage("jane@customer.example")...))

	v := verify(t, z, VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.customer.example", MailFrom: "jane@customer.example"}, m)
	if v.DMARC.Result != ResultPass || v.DMARCReject() {
		t.Fatalf("DMARC = %+v", v.DMARC)
	}
	stripped, n := StripAuthResults(m, ourID)
	if n != 1 || strings.Contains(string(stripped), "bank.example") {
		t.Errorf("forged field not stripped (%d removed)", n)
	}
	ar := v.AuthenticationResults(ourID, func(string) string { return "t1-al3wezv2nii3oa24@relay.company.example" })
	want := "mx.company.example; spf=pass smtp.mailfrom=t1-al3wezv2nii3oa24@relay.company.example; dkim=pass header.a=rsa-sha256 header.d=customer.example header.i=@customer.example header.s=s1; dmarc=pass header.from=customer.example"
	if ar != want {
		t.Errorf("AuthenticationResults\n = %s\nwant %s", ar, want)
	}
}
