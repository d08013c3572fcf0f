package header

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzRewriteAddressField checks that no input panics and that nothing
// escapes: once fn has turned every mailbox into the same token and name,
// the output holds no '@' but the token's, raw or encoded, and parsing it
// again finds no other address (nothing with '@' but the token).
func FuzzRewriteAddressField(f *testing.F) {
	for _, s := range []string{
		`Jane Doe <jane@example.com>`, `"Doe, Jane" <jane@example.com>`, `jane@example.com (Jane Doe)`,
		`a@x.com,,b@y.com; c@z.com`, `Undisclosed recipients:;`, `team: a@x.com, b@y.com;, c@z.com`,
		`(lead) Jane (x (y)) Doe <jane@example.com> (Sales \) EU)`, `"john smith"@example.com`,
		`"Jane \"JD\" Doe" <jane@example.com>`, `=?UTF-8?B?SsO2cmc=?= =?utf-8?q?_M=C3=BCller?= <a@b.com>`,
		`=?iso-2022-jp?b?GyRCRnxLXDhsGyhC?= <r@x.example>`, `=?x-unknown?q?J=F6rg?= <a@b.com>`,
		`Jörg Müller <jörg@exämple.de>`, `Jane <jane@example.com, Bob <bob@example.org>`,
		`Jane D. <j@x.com>`, `jane@example.com <jane@example.com>`, `a@x.com b@y.com garbage`,
		`<>`, `<@relay.example,@r2.example:jane@example.com>`, `<mailto:jane@example.com>`,
		`jane (x) @ example.com`, `a@b@c.example`, `jane@[192.0.2.1]`, `"Jane <jane@example.com>`,
		`Jane (x <jane@example.com>`, `=?utf-8?q?jane=40example.com?=`, `"=?utf-8?q?jane=40example.com?=" <j@x.com>`,
		`Jane <j@x.com> (was: old@example.org)`, `jane@example.com: a@x.com;`, "Jane\t Doe\r\n <j@x.example>",
	} {
		f.Add(s)
	}
	const tok = "tok@relay.example"
	everything := func(m Mailbox) (Mailbox, bool, error) {
		out := Mailbox{Name: "N"}
		if m.Addr != "" {
			out.Addr = tok
		}
		return out, true, nil
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, changed, err := RewriteAddressField(in, everything)
		if err != nil {
			if !errors.Is(err, ErrUnparsableHeader) || out != in || changed {
				t.Fatalf("error %v with %q, %v", err, out, changed)
			}
			return
		}
		if !changed && out != in {
			t.Fatalf("unchanged but %q", out)
		}
		if again, _, _ := RewriteAddressField(in, everything); again != out {
			t.Fatalf("not deterministic: %q then %q", out, again)
		}
		rest := strings.ReplaceAll(out, tok, "")
		if dec, _ := hdrDecodeText(rest); strings.Contains(dec, "@") {
			t.Fatalf("'@' left in %q", out)
		}
		_, _, err = RewriteAddressField(out, func(m Mailbox) (Mailbox, bool, error) {
			// Stray brackets kept as they were may regroup the output's
			// words ("<<@" becomes "<N <tok>", whose first address is "N"),
			// but no '@' other than the token's may come out.
			if strings.Contains(strings.ReplaceAll(m.Addr+" "+m.Name, tok, ""), "@") {
				t.Fatalf("output %q parses to %q", out, m)
			}
			return m, false, nil
		})
		if err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
	})
}

// FuzzRewriteUnstructured checks that no input panics, that an unchanged
// value comes back as it was, and that an address inside encoded-words
// does not survive its run being rewritten.
func FuzzRewriteUnstructured(f *testing.F) {
	for _, s := range []string{
		`Re: question from jane@example.com`, `=?utf-8?q?Anfrage_von_jane=40example.com?= [#1]`,
		`AW: =?utf-8?b?amFuZUBleGFt?=  =?utf-8?b?cGxlLmNvbSBzY2hyZWlidA==?= heute`,
		`=?iso-2022-jp?b?GyRCRnxLXDhsGyhCIGphbmVAZXhhbXBsZS5jb20=?=`, `<https://l.example/u?e=jane%40example.com>`,
		`=?x-unknown?q?=E9t=E9?= jane@example.com`, `Re:=?utf-8?q?jane=40example.com?=`,
	} {
		f.Add(s)
	}
	const tok = "tok@relay.example"
	f.Fuzz(func(t *testing.T, in string) {
		out, changed, err := RewriteUnstructured(in, hdrTestFind, func(string) (string, error) { return tok, nil })
		switch {
		case err != nil && !errors.Is(err, ErrUnparsableHeader):
			t.Fatalf("error %v", err)
		case err != nil || !changed:
			if out != in || changed {
				t.Fatalf("unchanged or failed, but %q, %v", out, changed)
			}
			return
		}
		for _, r := range hdrWordRuns(out, nil) {
			text, _, _ := r.decode(out)
			for _, m := range hdrTestTextAddr.FindAllString(text, -1) {
				if a, _ := url.PathUnescape(m); a != tok {
					t.Fatalf("%q is left in encoded-words of %q", m, out)
				}
			}
		}
	})
}
