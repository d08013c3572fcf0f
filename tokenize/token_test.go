package tokenize

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/address"
)

var testFormat = Format{Prefix: "t", Domain: "relay.company.example", Length: DefaultTokenLength}

func TestDeriveIsDeterministicAndKeyed(t *testing.T) {
	a, _ := address.Normalize("john@example.com", address.LocalFold)
	b, _ := address.Normalize("JOHN@Example.com", address.LocalFold)
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	if deriveMAC(k1, "t", a) != deriveMAC(k1, "t", b) {
		t.Error("same normalized address, different MAC")
	}
	if deriveMAC(k1, "t", a) == deriveMAC(k2, "t", a) {
		t.Error("MAC does not depend on the key")
	}
	if deriveMAC(k1, "t1", a) == deriveMAC(k1, "t2", a) {
		t.Error("MAC does not depend on the tenant")
	}
}

func TestFormatLocal(t *testing.T) {
	var m MAC
	local := testFormat.Local(3, m, 16)
	if local != "t3-aaaaaaaaaaaaaaaa" {
		t.Fatalf("Local = %q", local)
	}
	// 16 base32 characters carry 80 bits (DESIGN.md "Tokens").
	if bits := 16 * 5; bits < 80 {
		t.Fatal(bits)
	}
}

func TestParse(t *testing.T) {
	good := []struct{ in, local string }{
		{"t1-abcdefghijklmnop@relay.company.example", "t1-abcdefghijklmnop"},
		{"T1-ABCDEFGHIJKLMNOP@RELAY.Company.Example", "t1-abcdefghijklmnop"}, // CRMs re-case
		{"<t12-abcdefghijklmnop234567@relay.company.example>", "t12-abcdefghijklmnop234567"},
		{"t1-abcdefghijklmnop", "t1-abcdefghijklmnop"},
	}
	for _, tt := range good {
		tok, err := testFormat.Parse(tt.in)
		if err != nil || tok.Local != tt.local {
			t.Errorf("Parse(%q) = %+v, %v; want %q", tt.in, tok, err, tt.local)
		}
	}
	bad := []string{
		"t1-abcdefghijklmnop@other.example",
		"x1-abcdefghijklmnop@relay.company.example",
		"t-abcdefghijklmnop@relay.company.example",
		"t0-abcdefghijklmnop@relay.company.example",
		"t01-abcdefghijklmnop@relay.company.example",
		"t1abcdefghijklmnop@relay.company.example",
		"t1-abcdefghijklmno@relay.company.example", // shorter than issued
		"t1-abcdefghijklmnop1@relay.company.example",
		"t99999999999-abcdefghijklmnop@relay.company.example",
		"t1-" + strings.Repeat("a", 53) + "@relay.company.example",
		"",
		"@",
	}
	for _, in := range bad {
		if _, err := testFormat.Parse(in); !errors.Is(err, ErrUnknownToken) {
			t.Errorf("Parse(%q) err = %v, want ErrUnknownToken", in, err)
		}
	}
}

func TestFormatValidate(t *testing.T) {
	bad := []Format{
		{Prefix: "", Domain: "relay.example", Length: 16},
		{Prefix: "t1", Domain: "relay.example", Length: 16},
		{Prefix: "T", Domain: "relay.example", Length: 16},
		{Prefix: "t", Domain: "Relay.Example", Length: 16},
		{Prefix: "t", Domain: "relay.example", Length: 15},
		{Prefix: "t", Domain: "relay.example", Length: 53},
	}
	for _, f := range bad {
		if err := f.Validate(DefaultTokenLength); err == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
	}
	if err := testFormat.Validate(DefaultTokenLength); err != nil {
		t.Error(err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"t1-abcdefghijklmnop@relay.company.example", "T2-ABCDEFGHIJKLMNOPQ", "t1-@", "t-1-a", "<t1-aaaaaaaaaaaaaaaa>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := testFormat.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrUnknownToken) {
				t.Fatalf("Parse(%q) error %v is not ErrUnknownToken", s, err)
			}
			return
		}
		// A parsed token is canonical: parsing its address gives it back.
		again, err := testFormat.Parse(testFormat.Address(tok.Local))
		if err != nil || again != tok {
			t.Fatalf("Parse(%q) = %+v, reparse %+v, %v", s, tok, again, err)
		}
	})
}
