package orgdomain

import "testing"

func TestCheckAlignment(t *testing.T) {
	tests := []struct {
		from, domain string
		ok           bool
	}{
		{"support@company.example", "company.example", true},
		{"Acme Support <support@company.example>", "company.example", true},
		{"support@mail.company.example", "company.example", true},  // relaxed: same organizational domain
		{"support@company.example", "dkim.company.example", true},  // either way round
		{"support@COMPANY.example", "company.example.", true},      // case and trailing dot
		{"support@company.co.uk", "other.co.uk", false},            // co.uk is a public suffix
		{"support@company.example", "company-mail.example", false}, // different organizations
		{"support@company.example", "relay.company.example", true}, // the relay domain aligns
		{"support@bücher.example", "xn--bcher-kva.example", true},  // IDNA
		{"not an address", "company.example", false},
	}
	for _, tt := range tests {
		err := CheckAlignment(tt.from, tt.domain)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAlignment(%q, %q) = %v, want ok %v", tt.from, tt.domain, err, tt.ok)
		}
	}
}
