package address

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		lc       LocalCase
	}{
		{"John.Doe@Example.COM", "john.doe@example.com", LocalFold},
		{"John.Doe@Example.COM", "John.Doe@example.com", LocalPreserve},
		{"<a@b.example>", "a@b.example", LocalFold},
		{"  a@b.example.  ", "a@b.example", LocalFold},
		{`"john"@example.com`, "john@example.com", LocalFold},           // quotes around a dot-atom are noise (RFC 5321 4.1.2)
		{`"john doe"@example.com`, `"john doe"@example.com`, LocalFold}, // stays quoted
		{`"a\"b"@example.com`, `"a\"b"@example.com`, LocalFold},
		{`"a@b"@example.com`, `"a@b"@example.com`, LocalFold},
		{"user@Bücher.Example", "user@xn--bcher-kva.example", LocalFold},
		{"user@xn--bcher-kva.example", "user@xn--bcher-kva.example", LocalFold},
		{"JÖRG@example.com", "jörg@example.com", LocalFold},               // SMTPUTF8 local part
		{"jo\u0308rg@example.com", "j\u00f6rg@example.com", LocalFold},    // NFC
		{"用户@例子.中国", "用户@xn--fsqu00a.xn--fiqs8s", LocalFold},              // all non-ASCII
		{"user@[192.0.2.1]", "user@[192.0.2.1]", LocalFold},               // address literal
		{"user@[IPv6:2001:DB8::1]", "user@[ipv6:2001:db8::1]", LocalFold}, // literal, folded
		{"a+tag@example.com", "a+tag@example.com", LocalFold},             // sub-address kept
		{"x!#$%&'*+-/=?^_`{|}~@example.com", "x!#$%&'*+-/=?^_`{|}~@example.com", LocalFold},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in, tt.lc)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got.String(), tt.want)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"no at", "john.example.com"},
		{"empty", ""},
		{"empty local", "@example.com"},
		{"empty quoted local", `""@example.com`},
		{"empty domain", "john@"},
		{"too long", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".example"},
		{"local too long", strings.Repeat("a", 65) + "@example.com"},
		{"control char", "jo\x01hn@example.com"},
		{"control in quoted", "\"jo\x01hn\"@example.com"},
		{"newline", "john\r\n@example.com"},
		{"space unquoted", "john doe@example.com"},
		{"leading dot", ".john@example.com"},
		{"double dot", "jo..hn@example.com"},
		{"unterminated quote", `"john@example.com`},
		{"bad idna", "a@xn--zz.example"},
		{"bad idna hyphen", "a@-bad-.example"},
		{"underscore domain", "a@ex_ample.com"},
		{"invalid utf8", "a\xff@example.com"},
		{"bad literal", "a@[1.2.3.4"},
		{"empty label", "a@example..com"},
		{"two trailing dots", "a@0.0.0.."},
		{"empty punycode label", "a@Xn--.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.in, LocalFold)
			var ae *AddressError
			if !errors.Is(err, ErrInvalidAddress) || !errors.As(err, &ae) {
				t.Fatalf("Normalize(%q) err = %v, want *AddressError", tt.in, err)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error text %q contains the address", err)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"a@b.example", `"a b"@c.example`, "用户@例子.中国", "a@[1.2.3.4]", "x@xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Normalize(s, LocalFold)
		if err != nil {
			return
		}
		// The normal form is a fixed point: normalizing it changes nothing.
		b, err := Normalize(a.String(), LocalFold)
		if err != nil || b != a {
			t.Fatalf("Normalize(%q) = %q, then %q, %v", s, a.String(), b.String(), err)
		}
	})
}
