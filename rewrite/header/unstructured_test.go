package header

import (
	"errors"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// hdrTestTextAddr stands in for the text scanner: plain and percent-encoded
// addresses.
var hdrTestTextAddr = regexp.MustCompile(`[A-Za-z0-9._+-]+(@|%40)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+`)

func hdrTestFind(src []byte, fn scan.AddrFunc) ([]byte, bool, error) {
	changed, failed := false, error(nil)
	out := hdrTestTextAddr.ReplaceAllFunc(src, func(m []byte) []byte {
		addr, err := url.PathUnescape(string(m))
		if failed != nil || err != nil {
			return m
		}
		r, err := fn(addr)
		if err != nil || r == "" {
			failed = err
			return m
		}
		changed = true
		if strings.Contains(string(m), "%40") {
			r = strings.Replace(r, "@", "%40", 1)
		}
		return []byte(r)
	})
	return out, changed, failed
}

func hdrTestAddr(addr string) (string, error) {
	if strings.HasSuffix(addr, "@company.example") {
		return "", nil
	}
	return hdrTestToken(addr), nil
}

func TestRewriteUnstructured(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no address", `Re: your order [#123]`, `Re: your order [#123]`},
		{"raw", `Re: question from jane@example.com, cc bob@example.org`, `Re: question from {{jane@example.com}}, cc {{bob@example.org}}`},
		{"internal kept", `for <support@company.example>`, `for <support@company.example>`},
		{"received", `from mx.example.com (mx.example.com [192.0.2.1]) by mx.company.example for <jane@example.com>; Tue, 1 Jul 2025 10:00:00 +0000`,
			`from mx.example.com (mx.example.com [192.0.2.1]) by mx.company.example for <{{jane@example.com}}>; Tue, 1 Jul 2025 10:00:00 +0000`},
		{"percent-encoded", `<https://lists.example/u?e=jane%40example.com>, <mailto:leave@lists.example>`,
			`<https://lists.example/u?e={{jane@example.com|%40}}>, <mailto:{{leave@lists.example}}>`},
		{"encoded-word", `Re: =?utf-8?q?Anfrage_von_jane=40example.com?= [#123]`, `Re: {{=Anfrage von }} [#123]`},
		{"encoded-word, latin-1", `=?iso-8859-1?q?Gr=FC=DFe_von_jane=40example.com?=`, `{{=Grüße von }}`},
		{"encoded run", `AW: =?utf-8?b?amFuZUBleGFt?=  =?utf-8?b?cGxlLmNvbSBzY2hyZWlidA==?= heute`, `AW: {{=|jane@example.com| schreibt}} heute`},
		{"iso-2022-jp", `=?iso-2022-jp?b?GyRCRnxLXDhsGyhCIGphbmVAZXhhbXBsZS5jb20=?=`, `{{=日本語 }}`},
		{"encoded-word without address kept", `=?utf-8?q?Gr=C3=BC=C3=9Fe?= from jane@example.com`, `=?utf-8?q?Gr=C3=BC=C3=9Fe?= from {{jane@example.com}}`},
		{"undecodable without '@' kept", `=?x-unknown?q?=E9t=E9?= jane@example.com`, `=?x-unknown?q?=E9t=E9?= {{jane@example.com}}`},
		{"glued to text", `Re:=?utf-8?q?jane=40example.com?=`, `Re:{{=}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := RewriteUnstructured(tc.in, hdrTestFind, hdrTestAddr)
			want := hdrTestExpandText(tc.want, tc.in)
			if err != nil || changed != (tc.want != tc.in) || !hdrTestSameText(got, want) {
				t.Fatalf("RewriteUnstructured(%q)\n got %q, %v, %v\nwant %q", tc.in, got, changed, err, want)
			}
		})
	}
}

// hdrTestExpandText expands {{addr}} to a token, {{addr|%40}} to a
// percent-encoded token, and {{=text}} to text followed by the token of
// the address encoded in in, as encoded-words (compared decoded, see
// hdrTestSameText); {{=|addr|text}} puts the token of addr before text.
func hdrTestExpandText(want, in string) string {
	return regexp.MustCompile(`\{\{([^}]*)\}\}`).ReplaceAllStringFunc(want, func(m string) string {
		m = m[2 : len(m)-2]
		switch {
		case strings.HasPrefix(m, "=|"):
			parts := strings.SplitN(m[2:], "|", 2)
			return hdrEncodeWords(hdrTestToken(parts[0]) + parts[1])
		case strings.HasPrefix(m, "="):
			return hdrEncodeWords(m[1:] + hdrTestToken("jane@example.com"))
		case strings.HasSuffix(m, "|%40"):
			return strings.Replace(hdrTestToken(strings.TrimSuffix(m, "|%40")), "@", "%40", 1)
		}
		return hdrTestToken(m)
	})
}

// hdrTestSameText compares exactly, and also decoded with the standard
// library's decoder, which checks the encoded-words are well formed.
func hdrTestSameText(got, want string) bool {
	dec := new(mime.WordDecoder)
	g, err1 := dec.DecodeHeader(got)
	w, err2 := dec.DecodeHeader(want)
	if err2 != nil { // a charset the standard library lacks
		return got == want
	}
	return got == want && err1 == nil && err2 == nil && g == w
}

func TestRewriteUnstructuredErrors(t *testing.T) {
	_, _, err := RewriteUnstructured(`=?x-unknown?q?jane=40example.com=E9?=`, hdrTestFind, hdrTestAddr)
	if !errors.Is(err, ErrUnparsableHeader) || strings.Contains(err.Error(), "example") {
		t.Errorf("hidden address: got %v", err)
	}
	_, _, err = RewriteUnstructured(`=?utf-8?q?jane=40example.com?= =?x-unknown?q?=E9?=`, hdrTestFind, hdrTestAddr)
	if !errors.Is(err, ErrUnparsableHeader) {
		t.Errorf("address next to an undecodable word: got %v", err)
	}
	fail := errors.New("leak")
	for _, in := range []string{`jane@example.com`, `=?utf-8?q?jane=40example.com?=`} {
		got, changed, err := RewriteUnstructured(in, hdrTestFind, func(string) (string, error) { return "", fail })
		if err != fail || changed || got != in {
			t.Errorf("fn error in %q: got %q, %v, %v", in, got, changed, err)
		}
	}
}

func TestHeaderEncodeWords(t *testing.T) {
	dec := new(mime.WordDecoder)
	for _, s := range []string{
		"a", "Jörg", "Doe, Jane <x@y>", "日本語のテキスト", strings.Repeat("é", 100), strings.Repeat("ab c", 60),
		"tab\there", "=?utf-8?q?x?=", "\xff\xfe invalid", "🙂 " + strings.Repeat("🙂", 40),
	} {
		enc := hdrEncodeWords(s)
		for _, w := range strings.Fields(enc) {
			if len(w) > 75 {
				t.Errorf("%q: word %q longer than 75", s, w)
			}
		}
		got, err := dec.DecodeHeader(enc)
		if err != nil || (got != s && strings.ToValidUTF8(s, "\uFFFD") == s) {
			t.Errorf("%q: encoded %q decodes to %q, %v", s, enc, got, err)
		}
		if back, _ := hdrDecodeText(enc); back != strings.ToValidUTF8(s, "\uFFFD") {
			t.Errorf("%q: encoded %q decodes here to %q", s, enc, back)
		}
	}
}
