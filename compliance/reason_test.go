package compliance

import (
	"strings"
	"testing"
)

func TestCheckReason(t *testing.T) {
	for _, c := range []struct {
		reason string
		ok     bool
	}{
		{"ticket 4711: bounce", true},
		{"access request 2026-118", true},
		{"GDPR Art. 15 request, case 2026-118", true},
		{"called at 10.30 about ticket 4711", true},
		{"filed at noon, 100% sure it is a bounce", true},
		{"look at the mail log", true},
		{"chat transcript (attached) ticket 9", true},
		{"", false},
		{"   ", false},
		{strings.Repeat("x", maxReasonLen+1), false},
		{"customer jane@customer.test asked", false},
		{"customer jane＠customer.test asked", false},   // full-width U+FF20
		{"customer jane﹫customer.test asked", false},   // small U+FE6B
		{"customer jane%40customer.test asked", false}, // RFC 3986 percent-encoding
		{"customer jane%2540customer.test asked", false},
		{"customer jane&#64;customer.test asked", false},
		{"customer jane&#x40;customer.test asked", false},
		{"customer jane&commat;customer.test asked", false},
		{"customer jane&amp;#64;customer.test asked", false},
		{"customer jane[at]customer.test asked", false},
		{"customer jane (at) customer (dot) test asked", false},
		{"customer jane{at}customer.test", false},
		{"customer jane at customer.test asked", false},
		{"customer jane at customer dot test asked", false},
		{"mailto:jane%40customer.test", false},
		{"ｊａｎｅ＠ｃｕｓｔｏｍｅｒ．ｔｅｓｔ", false},
	} {
		err := CheckReason(c.reason)
		if (err == nil) != c.ok {
			t.Errorf("CheckReason(%q) = %v, want ok=%v", c.reason, err, c.ok)
		}
	}
}

func TestPercentDecodeKeepsStrayPercent(t *testing.T) {
	if got := percentDecode("100% a%4 %zz %41"); got != "100% a%4 %zz A" {
		t.Errorf("percentDecode = %q", got)
	}
}
