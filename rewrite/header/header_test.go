package header

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hdrTestToken is the token the test MailboxFunc gives an address: a hash
// of its lower-case form, so that the expected values stay readable.
func hdrTestToken(addr string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(addr)))
	return fmt.Sprintf("t%08x@relay.example", h.Sum32())
}

// hdrTestExpand replaces {{addr}} in a table's expected value with its token.
func hdrTestExpand(s string) string {
	return regexp.MustCompile(`\{\{([^}]*)\}\}`).ReplaceAllStringFunc(s, func(m string) string {
		return hdrTestToken(m[2 : len(m)-2])
	})
}

// hdrTestNameAddr finds addresses in a display name, as the rewriter's
// text scanner would.
var hdrTestNameAddr = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[A-Za-z0-9]`)

// hdrTestMailbox tokenizes every address but company.example's, and the
// addresses in display names.
func hdrTestMailbox(calls *[]Mailbox) MailboxFunc {
	return func(m Mailbox) (Mailbox, bool, error) {
		*calls = append(*calls, m)
		out := m
		if m.Addr != "" && !strings.HasSuffix(m.Addr, "@company.example") {
			out.Addr = hdrTestToken(m.Addr)
		}
		out.Name = hdrTestNameAddr.ReplaceAllStringFunc(m.Name, hdrTestToken)
		return out, out != m, nil
	}
}

func TestRewriteAddressField(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		calls          []Mailbox // checked when set
	}{
		{"name-addr", `Jane Doe <jane@example.com>`, `Jane Doe <{{jane@example.com}}>`,
			[]Mailbox{{"Jane Doe", "jane@example.com"}}},
		{"quoted name with comma", `"Doe, Jane" <jane@example.com>`, `"Doe, Jane" <{{jane@example.com}}>`,
			[]Mailbox{{"Doe, Jane", "jane@example.com"}}},
		{"bare addr-spec", `jane@example.com`, `{{jane@example.com}}`, nil},
		{"comment as name", `jane@example.com (Jane Doe)`, `Jane Doe <{{jane@example.com}}>`,
			[]Mailbox{{"Jane Doe", "jane@example.com"}}},
		{"list", `a@x.example, "B" <b@y.example>,c@z.example`, `{{a@x.example}}, "B" <{{b@y.example}}>,{{c@z.example}}`, nil},
		{"empty entries", `a@x.example,,b@y.example, ,`, `{{a@x.example}},,{{b@y.example}}, ,`, nil},
		{"unquoted comma in name (Outlook)", `Doe, Jane <jane@example.com>, Roe, Rick <rick@example.org>`,
			`Doe, Jane <{{jane@example.com}}>, Roe, Rick <{{rick@example.org}}>`,
			[]Mailbox{{"Doe, Jane", "jane@example.com"}, {"Roe, Rick", "rick@example.org"}}},
		{"semicolons (Outlook)", `a@x.example; Bob <b@y.example>;`, `{{a@x.example}}; Bob <{{b@y.example}}>;`, nil},
		{"group", `team: a@x.example, Bob <b@y.example>;, c@z.example`,
			`team: {{a@x.example}}, Bob <{{b@y.example}}>;, {{c@z.example}}`,
			[]Mailbox{{"team", ""}, {"", "a@x.example"}, {"Bob", "b@y.example"}, {"", "c@z.example"}}},
		{"empty group and mailbox", `Undisclosed recipients:;, a@x.example`, `Undisclosed recipients:;, {{a@x.example}}`,
			[]Mailbox{{"Undisclosed recipients", ""}, {"", "a@x.example"}}},
		{"group without ';'", `team: a@x.example`, `team: {{a@x.example}}`, nil},
		{"group named like an address", `jane@example.com: a@x.example;`, `"{{jane@example.com}}": {{a@x.example}};`,
			[]Mailbox{{"jane@example.com", ""}, {"", "a@x.example"}}},
		{"comments anywhere", `(lead) Jane (x) Doe <jane@example.com> (Sales (EU))`,
			`Jane Doe <{{jane@example.com}}> (lead) (x) (Sales (EU))`, []Mailbox{{"Jane Doe", "jane@example.com"}}},
		{"comment with quoted-pair", `jane@example.com (Jane \(JD\) Doe)`, `"Jane (JD) Doe" <{{jane@example.com}}>`,
			[]Mailbox{{"Jane (JD) Doe", "jane@example.com"}}},
		{"comment holding an address", `Jane <jane@example.com> (was: old@example.org)`,
			`"Jane (was: {{old@example.org}})" <{{jane@example.com}}>`,
			[]Mailbox{{"Jane (was: old@example.org)", "jane@example.com"}}},
		{"quoted local part", `"john smith"@example.com`, `{{"john smith"@example.com}}`,
			[]Mailbox{{"", `"john smith"@example.com`}}},
		{"quoted-pairs in name", `"Jane \"JD\" Doe" <jane@example.com>`, `"Jane \"JD\" Doe" <{{jane@example.com}}>`,
			[]Mailbox{{`Jane "JD" Doe`, "jane@example.com"}}},
		{"dots in unquoted name", `Jane D. <j@x.example>`, `Jane D. <{{j@x.example}}>`, []Mailbox{{"Jane D.", "j@x.example"}}},
		{"name looks like the address", `jane@example.com <jane@example.com>`, `"{{jane@example.com}}" <{{jane@example.com}}>`,
			[]Mailbox{{"jane@example.com", "jane@example.com"}}},
		{"name holds another address", `jane.doe@example.com via Support <support@company.example>`,
			`"{{jane.doe@example.com}} via Support" <support@company.example>`, nil},
		{"missing '>'", `Jane <jane@example.com`, `Jane <{{jane@example.com}}>`, nil},
		{"missing '>' mid-list", `Jane <jane@example.com, Bob <bob@example.org>`,
			`Jane <{{jane@example.com}}>, Bob <{{bob@example.org}}>`, nil},
		{"missing comma", `a@x.example b@y.example`, `{{a@x.example}} {{b@y.example}}`, nil},
		{"missing comma, angle", `Jane <a@x.example> Bob <b@y.example>`, `Jane <{{a@x.example}}> Bob <{{b@y.example}}>`, nil},
		{"trailing garbage", `Jane <jane@example.com> garbage`, `Jane garbage <{{jane@example.com}}>`,
			[]Mailbox{{"Jane garbage", "jane@example.com"}}},
		{"words before addr-spec", `Jane jane@example.com`, `Jane <{{jane@example.com}}>`, []Mailbox{{"Jane", "jane@example.com"}}},
		{"return-path", `<jane@example.com>`, `<{{jane@example.com}}>`, nil},
		{"null return-path", `<>`, `<>`, []Mailbox{}},
		{"null path among addresses", `<>, a@x.example`, `<>, {{a@x.example}}`, []Mailbox{{"", "a@x.example"}}},
		{"obsolete route", `<@relay.example,@r2.example:jane@example.com>`, `<{{jane@example.com}}>`,
			[]Mailbox{{"", "jane@example.com"}}},
		{"mailto in brackets", `Jane <mailto:jane@example.com>`, `Jane <{{jane@example.com}}>`, nil},
		{"CFWS around '@'", `jane (x) @ example.com`, `x <{{jane@example.com}}>`, []Mailbox{{"x", "jane@example.com"}}},
		{"two '@'", `a@b@c.example`, `{{a@b@c.example}}`, nil},
		{"domain literal", `jane@[192.0.2.1]`, `{{jane@[192.0.2.1]}}`, nil},
		{"internal kept", `Support <support@company.example>`, `Support <support@company.example>`, nil},
		{"internal kept, external changed", `Support <support@company.example>, x@y.example`,
			`Support <support@company.example>, {{x@y.example}}`, nil},
		{"unterminated quote", `"Jane <jane@example.com>`, `"Jane <{{jane@example.com}}>`, nil},
		{"unterminated comment", `Jane (x <jane@example.com>`, `Jane (x <{{jane@example.com}}>`, nil},
		{"stray '>'", `Jane <j@x.example>>`, `Jane <{{j@x.example}}>`, nil},
		{"white space left by unfolding", "Jane\t Doe\r\n <j@x.example>,\r\n b@y.example", "Jane\t Doe <{{j@x.example}}>,\r\n {{b@y.example}}", nil},
		{"raw UTF-8 (RFC 6532)", `Jörg Müller <jörg@exämple.de>`, `Jörg Müller <{{jörg@exämple.de}}>`,
			[]Mailbox{{"Jörg Müller", "jörg@exämple.de"}}},
		{"encoded-word name", `=?UTF-8?B?SsO2cmc=?= <a@b.example>`, `=?UTF-8?B?SsO2cmc=?= <{{a@b.example}}>`,
			[]Mailbox{{"Jörg", "a@b.example"}}},
		{"adjacent encoded-words", `=?utf-8?q?Jane?= =?utf-8?q?_Doe?= <j@x.example>`, `=?utf-8?q?Jane?= =?utf-8?q?_Doe?= <{{j@x.example}}>`,
			[]Mailbox{{"Jane Doe", "j@x.example"}}},
		{"encoded-word and atoms", `Dr. =?iso-8859-1?q?J=F6rg?= Xu <j@x.example>`, `Dr. =?iso-8859-1?q?J=F6rg?= Xu <{{j@x.example}}>`,
			[]Mailbox{{"Dr. Jörg Xu", "j@x.example"}}},
		{"encoded-word inside quotes", `"=?utf-8?q?Jane?=" <j@x.example>`, `"=?utf-8?q?Jane?=" <{{j@x.example}}>`,
			[]Mailbox{{"Jane", "j@x.example"}}},
		{"encoded address as name", `=?utf-8?q?jane=40example.com?= <jane@example.com>`, `"{{jane@example.com}}" <{{jane@example.com}}>`,
			[]Mailbox{{"jane@example.com", "jane@example.com"}}},
		{"encoded address alone", `=?utf-8?b?amFuZUBleGFtcGxlLmNvbQ==?=`, `"{{jane@example.com}}"`,
			[]Mailbox{{"jane@example.com", ""}}},
		{"quoted address alone", `"jane@example.com"`, `"{{jane@example.com}}"`, []Mailbox{{"jane@example.com", ""}}},
		{"undecodable charset kept", `=?x-unknown?q?J=F6rg?= <a@b.example>`, `=?x-unknown?q?J=F6rg?= <{{a@b.example}}>`,
			[]Mailbox{{"=?x-unknown?q?J=F6rg?=", "a@b.example"}}},
		{"unknown charset, ASCII payload", `=?x-unknown?q?Jane?= <a@b.example>`, `=?x-unknown?q?Jane?= <{{a@b.example}}>`,
			[]Mailbox{{"Jane", "a@b.example"}}},
		{"words without address", `postmaster, a@x.example`, `postmaster, {{a@x.example}}`, []Mailbox{{"", "a@x.example"}}},
		{"no address", `Undisclosed recipients:;`, `Undisclosed recipients:;`, []Mailbox{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []Mailbox
			got, changed, err := RewriteAddressField(tc.in, hdrTestMailbox(&calls))
			want := hdrTestExpand(tc.want)
			if err != nil || got != want || changed != (want != tc.in) {
				t.Fatalf("RewriteAddressField(%q)\n got %q, %v, %v\nwant %q, %v", tc.in, got, changed, err, want, want != tc.in)
			}
			if tc.calls != nil && fmt.Sprint(calls) != fmt.Sprint(tc.calls) {
				t.Errorf("fn saw %q, want %q", calls, tc.calls)
			}
		})
	}
}

// TestRewriteAddressFieldCharsets checks display names in the charsets
// go-message/charset provides.
func TestRewriteAddressFieldCharsets(t *testing.T) {
	for _, tc := range []struct{ in, name string }{
		{`=?utf-8?q?Ren=C3=A9e?= <r@x.example>`, "Renée"},
		{`=?ISO-8859-1?Q?Ren=E9e?= <r@x.example>`, "Renée"},
		{`=?iso-8859-1?b?UmVu6WU=?= <r@x.example>`, "Renée"},
		{`=?windows-1252?q?=80uro_=93Shop=94?= <r@x.example>`, "€uro “Shop”"},
		{`=?iso-8859-15?q?=A4uro?= <r@x.example>`, "€uro"},
		{`=?koi8-r?b?7c/Ty9fB?= <r@x.example>`, "Москва"},
		{`=?iso-2022-jp?b?GyRCRnxLXDhsGyhC?= <r@x.example>`, "日本語"},
		{`=?shift_jis?b?k/qWe4zq?= <r@x.example>`, "日本語"},
		{`=?gb2312?b?1tDOxA==?= <r@x.example>`, "中文"},
		{`=?utf-8*en?q?Jane?= <r@x.example>`, "Jane"},                      // RFC 2231 language
		{`=?utf-8?b?5pel5pys?= =?utf-8?b?6Kqe?= <r@x.example>`, "日本語"},     // adjacent words
		{`=?utf-8?b?5pel5g==?= =?utf-8?b?nKzoqp4=?= <r@x.example>`, "日本語"}, // a character split across words
		{`=?utf-8?b?SsO2cmc?= <r@x.example>`, "Jörg"},                      // missing padding
		{`=?utf-8?b?S!sO2cmc==?= <r@x.example>`, "Jörg"},                   // junk
	} {
		var calls []Mailbox
		if _, _, err := RewriteAddressField(tc.in, hdrTestMailbox(&calls)); err != nil || len(calls) != 1 || calls[0].Name != tc.name {
			t.Errorf("RewriteAddressField(%q): fn saw %q, %v; want name %q", tc.in, calls, err, tc.name)
		}
	}
}

// TestRewriteAddressFieldNewName checks how a name fn changed is written:
// atoms, quoted, raw UTF-8 where the field had it, encoded-words elsewhere.
func TestRewriteAddressFieldNewName(t *testing.T) {
	for _, tc := range []struct{ in, name, want string }{
		{`Jane <j@x.example>`, "Customer 7", `Customer 7 <j@x.example>`},
		{`Jane <j@x.example>`, "Doe, Jane", `"Doe, Jane" <j@x.example>`},
		{`Jane <j@x.example>`, `a"b\c`, `"a\"b\\c" <j@x.example>`},
		{`Jane <j@x.example>`, "", `<j@x.example>`},
		{`j@x.example (Jane)`, "", `j@x.example`},
		{`Jane <j@x.example>`, "Jörg", `=?utf-8?b?SsO2cmc=?= <j@x.example>`},
		{`Jane <j@x.example>`, "Renée Müller-Lüdenscheidt", `=?utf-8?q?Ren=C3=A9e_M=C3=BCller-L=C3=BCdenscheidt?= <j@x.example>`},
		{`Jane <j@x.example>`, "a\r\nBcc: x@y", `=?utf-8?b?YQ0KQmNjOiB4QHk=?= <j@x.example>`},
		{`Jane <j@x.example>`, "=?utf-8?q?x?=", `=?utf-8?b?PT91dGYtOD9xP3g/PQ==?= <j@x.example>`},
		{`Jörg <j@x.example>`, "Jürgen", `Jürgen <j@x.example>`},
		{`Jörg <j@x.example>`, "Jürgen M.", `"Jürgen M." <j@x.example>`},
		{`team: j@x.example;`, "", `"": j@x.example;`},
		{`Doe, Jane <j@x.example>`, "Customer 7", `Customer 7 <j@x.example>`},
	} {
		fn := func(m Mailbox) (Mailbox, bool, error) {
			if m.Name == "" && m.Addr != "" && tc.name == "" {
				return m, false, nil // the group test: only the group name changes
			}
			m.Name = tc.name
			return m, true, nil
		}
		if got, _, err := RewriteAddressField(tc.in, fn); err != nil || got != tc.want {
			t.Errorf("name %q in %q: got %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestRewriteAddressFieldUnchanged(t *testing.T) {
	in := `"Doe, Jane" <jane@example.com> (x), team: =?utf-8?q?B=C3=B6b?= <b@y.example>;, <>`
	n := 0
	got, changed, err := RewriteAddressField(in, func(m Mailbox) (Mailbox, bool, error) {
		n++
		return Mailbox{Name: "ignored", Addr: "ignored@x"}, false, nil
	})
	if got != in || changed || err != nil || n != 3 {
		t.Errorf("got %q, %v, %v after %d calls; want the input, false, nil after 3", got, changed, err, n)
	}
	// Changed by fn but rendered as it was: no change either.
	got, changed, _ = RewriteAddressField(`Jane <j@x.example>`, func(m Mailbox) (Mailbox, bool, error) { return m, true, nil })
	if got != `Jane <j@x.example>` || changed {
		t.Errorf("identity rewrite: got %q, %v", got, changed)
	}
}

func TestRewriteAddressFieldErrors(t *testing.T) {
	fail := errors.New("stop")
	_, _, err := RewriteAddressField(`a@x.example`, func(Mailbox) (Mailbox, bool, error) { return Mailbox{}, false, fail })
	if err != fail {
		t.Errorf("fn error: got %v", err)
	}
	_, _, err = RewriteAddressField(`a@x.example`, func(m Mailbox) (Mailbox, bool, error) {
		return Mailbox{Addr: "b@y\r\nBcc: c@z"}, true, nil
	})
	if err == nil {
		t.Error("a line break in a replacement address was accepted")
	}
	for _, in := range []string{
		`=?x-unknown?q?jane=40example.com=E9?= <a@b.example>`, // undecodable, hides '@'
		`a@x.example ` + strings.Repeat("(", 5000),            // quadratic unclosed comments
	} {
		_, _, err := RewriteAddressField(in, func(m Mailbox) (Mailbox, bool, error) { return m, false, nil })
		var he *HeaderError
		if !errors.Is(err, ErrUnparsableHeader) || !errors.As(err, &he) || strings.Contains(err.Error(), "example") {
			t.Errorf("RewriteAddressField(%.40q): got %v, want a HeaderError without the address", in, err)
		}
	}
}

// TestRewriteAddressFieldHostile feeds large values built to make a naive
// parser quadratic; the bound is loose, a quadratic run takes minutes.
func TestRewriteAddressFieldHostile(t *testing.T) {
	const n = 50000
	change := func(m Mailbox) (Mailbox, bool, error) { m.Addr = "t@relay.example"; return m, true, nil }
	for name, in := range map[string]string{
		"unclosed parens":  "a@b.example " + strings.Repeat("(", n),
		"escaped parens":   "a@b.example " + strings.Repeat(`\(`, n),
		"escaped quotes":   "a@b.example " + strings.Repeat(`\"`, n),
		"unclosed angles":  strings.Repeat("<", n) + "a@b.example",
		"route commas":     "<@" + strings.Repeat(",", n) + "a@b.example",
		"comments":         "N a@b.example " + strings.Repeat("(c)", n),
		"address comments": "N a@b.example " + strings.Repeat("(c@d)", n),
		"list":             strings.Repeat("Jane <a@b.example>, ", n/10),
		"words":            strings.Repeat("w ", n) + "a@b.example",
		"dots":             strings.Repeat("a.", n) + "@b",
		"broken words":     strings.Repeat("=?a?q?", n) + "a@b.example",
		"words run":        strings.Repeat("=?utf-8?q?a?= ", n) + "a@b.example",
		"outlook commas":   strings.Repeat("Doe, ", n) + "Jane <a@b.example>",
	} {
		start := time.Now()
		_, _, err := RewriteAddressField(in, change)
		if err != nil && !errors.Is(err, ErrUnparsableHeader) {
			t.Errorf("%s: %v", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}
