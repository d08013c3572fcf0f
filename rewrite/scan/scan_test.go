package scan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// scanCase is one row of the scanner tables: the addresses fn must see,
// and the output when each is replaced by scanTok.
type scanCase struct {
	name  string
	in    string
	found []string // nil: none
	out   string   // "": same as in
}

const scanTok = "tok@relay.test"

func runScanTable(t *testing.T, kind TextKind, cases []scanCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var found []string
			out, changed, err := ReplaceAddresses(kind, []byte(c.in), func(a string) (string, error) {
				found = append(found, a)
				return scanTok, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(found, c.found) {
				t.Errorf("found %q, want %q", found, c.found)
			}
			want := c.out
			if want == "" {
				want = c.in
			}
			if string(out) != want || changed != (want != c.in) {
				t.Errorf("out %q (changed %v), want %q", out, changed, want)
			}
		})
	}
}

func TestScanPlain(t *testing.T)  { runScanTable(t, TextPlain, scanPlainCases) }
func TestScanHTML(t *testing.T)   { runScanTable(t, TextHTML, scanHTMLCases) }
func TestScanFolded(t *testing.T) { runScanTable(t, TextFolded, scanFoldedCases) }

var scanPlainCases = []scanCase{
	{"bare", "mail jane@example.com now", []string{"jane@example.com"}, "mail tok@relay.test now"},
	{"sentence end", "mail jane@example.com.", []string{"jane@example.com"}, "mail tok@relay.test."},
	{"ellipsis", "jane@example.com...", []string{"jane@example.com"}, "tok@relay.test..."},
	{"angle", "Jane <jane@example.com>", []string{"jane@example.com"}, "Jane <tok@relay.test>"},
	{"parens comma", "(jane@example.com, bob@example.org)", []string{"jane@example.com", "bob@example.org"}, "(tok@relay.test, tok@relay.test)"},
	{"case kept", "Jane.Doe@Example.COM", []string{"Jane.Doe@Example.COM"}, scanTok},
	{"mailto", "mailto:jane@example.com", []string{"jane@example.com"}, "mailto:tok@relay.test"},
	{"MAILTO", "MAILTO:jane@example.com", []string{"jane@example.com"}, "MAILTO:tok@relay.test"},
	{"crlf kept", "a\r\njane@example.com\r\nb\r\n", []string{"jane@example.com"}, "a\r\ntok@relay.test\r\nb\r\n"},
	{"atext", "o'brien+x_y=z@example.com", []string{"z@example.com"}, "o'brien+x_y=tok@relay.test"},
	{"apostrophe", "o'brien@example.com", []string{"o'brien@example.com"}, scanTok},
	{"subdomains", "first.last+tag@mail.sub.example.co.uk", []string{"first.last+tag@mail.sub.example.co.uk"}, scanTok},
	{"digits", "jane@123.example", []string{"jane@123.example"}, scanTok},

	{"quotes", "'jane@example.com'", []string{"jane@example.com"}, "'tok@relay.test'"},
	{"typographic quotes", "“jane@example.com”", []string{"jane@example.com"}, "“tok@relay.test”"},
	{"markdown", "**jane@example.com** `bob@example.org`", []string{"jane@example.com", "bob@example.org"}, "**tok@relay.test** `tok@relay.test`"},
	{"hyphen after", "jane@example.com-", []string{"jane@example.com"}, "tok@relay.test-"},
	{"dashes", "--jane@example.com--", []string{"jane@example.com"}, "--tok@relay.test--"},
	{"colon", "email:jane@example.com:", []string{"jane@example.com"}, "email:tok@relay.test:"},
	{"zero width", "jane\u200b@\u200cexample.com", []string{"jane@example.com"}, scanTok},
	{"nbsp", "mail\u00a0jane@example.com\u00a0now", []string{"jane@example.com"}, "mail\u00a0tok@relay.test\u00a0now"},
	{"leading dot", ".jane@example.com", []string{"jane@example.com"}, ".tok@relay.test"},
	{"url query", "https://x.test/u?id=1&email=jane@example.com&y=2", []string{"jane@example.com"}, "https://x.test/u?id=1&email=tok@relay.test&y=2"},
	{"parameter", "user=jane@example.com status=sent", []string{"jane@example.com"}, "user=tok@relay.test status=sent"},
	{"verp", "<mailto:bounces+jane=example.com@lists.example.org>", []string{"bounces+jane=example.com@lists.example.org"}, "<mailto:tok@relay.test>"},
	{"verp in query", "?to=list-jane=example.com@lists.example.org", []string{"list-jane=example.com@lists.example.org"}, "?to=tok@relay.test"},
	{"srs", "SRS0=HHH=TT=example.com=jane@forwarder.example", []string{"jane@forwarder.example"}, "SRS0=HHH=TT=example.com=tok@relay.test"},
	{"dotted parameter", "email=jane.doe@example.com", []string{"jane.doe@example.com"}, "email=tok@relay.test"},
	{"path", "https://x.test/users/jane@example.com/edit", []string{"jane@example.com"}, "https://x.test/users/tok@relay.test/edit"},
	{"two ats", "a@b@example.com", []string{"b@example.com"}, "a@tok@relay.test"},
	{"chained", "jane@example.com@example.org", []string{"jane@example.com"}, "tok@relay.test@example.org"},
	{"trailing label", "jane@example.com.x", []string{"jane@example.com"}, "tok@relay.test.x"},

	{"no tld", "a@localhost", nil, ""},
	{"numeric tld", "pkg@1.2.3", nil, ""},
	{"short tld", "jane@example.c", nil, ""},
	{"digit tld", "jane@example.c1", nil, ""},
	{"handle", "@jane and jane@", nil, ""},
	{"domain dot", "jane@.example.com", nil, ""},
	{"domain hyphen", "jane@-example.com", nil, ""},
	{"double dot", "foo..bar@example.com", nil, ""},
	{"dot before at", "jane.@example.com", nil, ""},

	{"idn", "jane@bücher.de", []string{"jane@bücher.de"}, scanTok},
	{"idn cjk", "jane@例え.jp", []string{"jane@例え.jp"}, scanTok},
	{"idn tld", "jane@пример.рф", []string{"jane@пример.рф"}, scanTok},
	{"a-label", "jane@xn--bcher-kva.xn--p1ai", []string{"jane@xn--bcher-kva.xn--p1ai"}, scanTok},
	{"utf8 local", "josé.müller@example.com", []string{"josé.müller@example.com"}, scanTok},
	{"utf8 local cjk", "山田@example.jp", []string{"山田@example.jp"}, scanTok},
	{"spaceless prose", "連絡先jane@example.comまで", []string{"jane@example.com"}, "連絡先tok@relay.testまで"},

	{"cid", `src="cid:part1.06090408@example.com"`, nil, ""},
	{"cid image", "cid:image001.png@01D9A1B2.C3D4E5F0", nil, ""},
	{"CID", "CID:x@example.com MID:y@example.com", nil, ""},
	{"not cid", "acid:x@example.com", []string{"x@example.com"}, "acid:tok@relay.test"},

	{"pct query", "?email=jane%40example.com&x=1", []string{"jane@example.com"}, "?email=tok%40relay.test&x=1"},
	{"pct mailto", "mailto:jane%2Bx%40example.com", []string{"jane+x@example.com"}, "mailto:tok%40relay.test"},
	{"pct utf8", "?e=jos%C3%A9%40example.com", []string{"josé@example.com"}, "?e=tok%40relay.test"},
	{"pct lower hex", "?e=a%2bb%40ex%2ecom.example", []string{"a+b@ex.com.example"}, "?e=tok%40relay.test"},
	{"pct literal at", "?e=jane%2Bx@example.com", []string{"jane%2Bx@example.com"}, "?e=tok@relay.test"},
	{"pct stops at", "a%40b@example.com", []string{"b@example.com"}, "a%40tok@relay.test"},
	{"pct end", "?e=jane%40example.com%2C", []string{"jane@example.com"}, "?e=tok%40relay.test%2C"},
}

var scanHTMLCases = []scanCase{
	{"text", "<p>mail jane@example.com.</p>", []string{"jane@example.com"}, "<p>mail tok@relay.test.</p>"},
	{"href", `<a href="mailto:jane@example.com">Jane</a>`, []string{"jane@example.com"}, `<a href="mailto:tok@relay.test">Jane</a>`},
	{"href decimal", `<a href="mailto:jane&#64;example.com">x</a>`, []string{"jane@example.com"}, `<a href="mailto:tok@relay.test">x</a>`},
	{"unquoted attr", `<a data-mail=jane@example.com>`, []string{"jane@example.com"}, `<a data-mail=tok@relay.test>`},
	{"single quoted", `<a title='jane@example.com'>`, []string{"jane@example.com"}, `<a title='tok@relay.test'>`},
	{"decimal", "jane&#64;example.com", []string{"jane@example.com"}, scanTok},
	{"decimal zeros", "jane&#0064;example.com", []string{"jane@example.com"}, scanTok},
	{"decimal no semicolon", "jane&#64example.com", []string{"jane@example.com"}, scanTok},
	{"hex", "jane&#x40;example.com", []string{"jane@example.com"}, scanTok},
	{"HEX", "jane&#X40;example.com", []string{"jane@example.com"}, scanTok},
	{"named", "jane&commat;example&period;com", []string{"jane@example.com"}, scanTok},
	{"named parts", "jane&period;doe&hyphen;x&lowbar;y&plus;z&commat;example.com", []string{"jane.doe-x_y+z@example.com"}, scanTok},
	{"dash lowbar", "a&dash;b&#46;c&#x2E;d@example.com", []string{"a-b.c.d@example.com"}, scanTok},
	{"period without semicolon", "jane&period@example.com", []string{"period@example.com"}, "jane&&#116;ok@relay.test"},
	{"letter ref", "ren&eacute;@example.com", []string{"rené@example.com"}, scanTok},
	{"entities around", "&lt;jane@example.com&gt;&nbsp;", []string{"jane@example.com"}, "&lt;tok@relay.test&gt;&nbsp;"},
	{"zero width refs", "jane&zwnj;@example&#8203;.com&shy;", []string{"jane@example.com"}, scanTok},
	{"nbsp before", "Contact:&nbsp;jane@example.com", []string{"jane@example.com"}, "Contact:&nbsp;tok@relay.test"},
	{"span at", "jane<span>@</span>example.com", []string{"jane@example.com"}, "tok@relay.test<span></span>"},
	{"bold domain", "jane@<b>example.com</b>", []string{"jane@example.com"}, "tok@relay.test<b></b>"},
	{"link local", "<a>jane</a>@example.com", []string{"jane@example.com"}, "<a>tok@relay.test</a>"},
	{"many tags", "<b>ja</b><i>ne</i><span>&#64;</span><u>exa</u>mple.<b>com</b>!", []string{"jane@example.com"}, "<b>tok@relay.test</b><i></i><span></span><u></u><b></b>!"},
	{"cells", "<td>Email</td><td>jane@example.com</td><td>Phone</td>", []string{"jane@example.com"}, "<td>Email</td><td>tok@relay.test</td><td>Phone</td>"},
	{"br", "jane@example.com<br>next line", []string{"jane@example.com"}, "tok@relay.test<br>next line"},
	{"split by blocks", "<div>jane</div><div>@example.com</div>", []string{"jane@example.com"}, "<div>tok@relay.test</div><div></div>"},
	{"space stops", "jane <span>@</span> example.com", nil, ""},
	{"comment", "<!-- jane@example.com -->", []string{"jane@example.com"}, "<!-- tok@relay.test -->"},
	{"tight comment", "<!--jane@example.com-->", []string{"jane@example.com"}, "<!--tok@relay.test-->"},
	{"conditional comment", `<!--[if mso]><a href="mailto:jane@example.com">jane<span>@</span>example.com</a><![endif]-->`,
		[]string{"jane@example.com", "jane@example.com"}, `<!--[if mso]><a href="mailto:tok@relay.test">tok@relay.test<span></span></a><![endif]-->`},
	{"comment with gt", "<!-- a > b jane@example.com -->", []string{"jane@example.com"}, "<!-- a > b tok@relay.test -->"},
	{"script", "<script>var e = 'jane@example.com'; if (a<b) x=\"bob@example.org\";</script>",
		[]string{"jane@example.com", "bob@example.org"}, "<script>var e = 'tok@relay.test'; if (a<b) x=\"tok@relay.test\";</script>"},
	{"style", "<style>/* jane@example.com */</style>", []string{"jane@example.com"}, "<style>/* tok@relay.test */</style>"},
	{"cid", `<img src="cid:image001.png@01D9A1B2.C3D4E5F0"><img src="cid:part1.x@example.com">`, nil, ""},
	{"address as tag", "Jane <jane@example.com> wrote", []string{"jane@example.com"}, "Jane <tok@relay.test> wrote"},
	{"lt not a tag", "<1jane@example.com>", []string{"1jane@example.com"}, "<&#116;ok@relay.test>"},
	{"pct href", `<a href="https://x.test/?e=jane%40example.com&amp;y=1">`, []string{"jane@example.com"}, `<a href="https://x.test/?e=tok%40relay.test&amp;y=1">`},
	{"pct entity", "?e=jane&#37;40example.com", []string{"jane@example.com"}, "?e=tok%40relay.test"},
	{"cdata", "<![CDATA[jane@example.com]]>", []string{"jane@example.com"}, "<![CDATA[tok@relay.test]]>"},
	{"wbr", "jane@exam<wbr>ple.com", []string{"jane@example.com"}, "tok@relay.test<wbr>"},
	{"xml", `<?xml version="1.0"?><contact><email>jane@example.com</email></contact>`, []string{"jane@example.com"},
		`<?xml version="1.0"?><contact><email>tok@relay.test</email></contact>`},
	{"no address", "<p>Hello &amp; welcome&nbsp;&#8217;</p>", nil, ""},
	{"at entity alone", "&#64;jane", nil, ""},
}

var scanFoldedCases = []scanCase{
	{"organizer", "ORGANIZER;CN=Jane:mailto:jane@example.com\r\n", []string{"jane@example.com"}, "ORGANIZER;CN=Jane:mailto:tok@relay.test\r\n"},
	{"split by fold", "ORGANIZER;CN=Jane:mailto:jane@exa\r\n mple.com\r\nEND:VEVENT\r\n", []string{"jane@example.com"},
		"ORGANIZER;CN=Jane:mailto:tok@relay.test\r\nEND:VEVENT\r\n"},
	{"fold at at", "EMAIL:jane\r\n\t@example.com\r\n", []string{"jane@example.com"}, "EMAIL:tok@relay.test\r\n"},
	{"bare lf fold", "EMAIL:jane@exa\n mple.com\nX:y\n", []string{"jane@example.com"}, "EMAIL:tok@relay.test\nX:y\n"},
	{"MAILTO and CN", "ATTENDEE;CN=jane@example.com;RSVP=TRUE:MAILTO:jane@example.com\r\n", []string{"jane@example.com", "jane@example.com"},
		"ATTENDEE;CN=tok@relay.test;RSVP=TRUE:MAILTO:tok@relay.test\r\n"},
	{"escapes", "NOTE:write\\,jane@example.com\\, or\\nbob@example.org\\;x\r\n", []string{"jane@example.com", "bob@example.org"},
		"NOTE:write\\,tok@relay.test\\, or\\ntok@relay.test\\;x\r\n"},
	{"escaped backslash", "NOTE:a\\\\njane@example.com\r\n", []string{"njane@example.com"}, "NOTE:a\\\\tok@relay.test\r\n"},
	{"pct folded", "URL:https://x.test/?e=jane%4\r\n 0example.com\r\n", []string{"jane@example.com"}, "URL:https://x.test/?e=tok%40relay.test\r\n"},
	{"other lines kept", "BEGIN:VCARD\r\nNOTE:long\r\n\tfolded\r\n text\r\nEMAIL:jane@example.com\r\nEND:VCARD",
		[]string{"jane@example.com"}, "BEGIN:VCARD\r\nNOTE:long\r\n\tfolded\r\n text\r\nEMAIL:tok@relay.test\r\nEND:VCARD"},
	{"no address", "BEGIN:VCALENDAR\r\nX:100%\r\n 40\r\nEND:VCALENDAR\r\n", nil, ""},
}

// TestScanRefold checks that a changed content line is folded again within
// 75 octets, without splitting UTF-8, and that other lines keep their bytes.
func TestScanRefold(t *testing.T) {
	long := strings.Repeat("é", 40) + "@relay.test"
	in := "BEGIN:VCALENDAR\r\nDESCRIPTION:" + strings.Repeat("x", 60) + "\r\n  keep this fold\r\n" +
		"ATTENDEE;CN=\"Jane Doe\";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:jane@exa\r\n mple.com\r\nEND:VCALENDAR\r\n"
	out, changed, err := ReplaceAddresses(TextFolded, []byte(in), func(string) (string, error) { return long, nil })
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	lines := strings.Split(string(out), "\r\n")
	for _, l := range lines {
		if len(l) > 75 {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
		if !utf8ValidString(l) {
			t.Errorf("split UTF-8: %q", l)
		}
	}
	if !strings.HasPrefix(string(out), in[:strings.Index(in, "ATTENDEE")]) {
		t.Errorf("unchanged lines altered:\n%s", out)
	}
	unfolded := strings.ReplaceAll(string(out), "\r\n ", "")
	if want := "PARTSTAT=NEEDS-ACTION:mailto:" + long + "\r\nEND:VCALENDAR\r\n"; !strings.HasSuffix(unfolded, want) {
		t.Errorf("unfolded %q, want suffix %q", unfolded, want)
	}
}

func TestScanReplacementForms(t *testing.T) {
	repl := func(string) (string, error) { return `a+b&"c'<d>@relay.test`, nil }
	for _, c := range []struct {
		kind    TextKind
		in, out string
	}{
		{TextPlain, "?e=jane%40example.com", "?e=a%2Bb%26%22c%27%3Cd%3E%40relay.test"},
		{TextPlain, "jane@example.com", `a+b&"c'<d>@relay.test`},
		{TextHTML, "<p>jane@example.com</p>", "<p>a+b&amp;&quot;c&#39;&lt;d&gt;@relay.test</p>"},
		{TextHTML, `<a href="?e=jane%40example.com">`, `<a href="?e=a%2Bb%26%22c%27%3Cd%3E%40relay.test">`},
		{TextHTML, "&#1jane@example.com", "&#1&#97;+b&amp;&quot;c&#39;&lt;d&gt;@relay.test"},
		{TextHTML, "&jane@example.com", "&&#97;+b&amp;&quot;c&#39;&lt;d&gt;@relay.test"},
		{TextPlain, "?e=%4xjane%40example.com", "?e=%%61%2Bb%26%22c%27%3Cd%3E%40relay.test"},
	} {
		out, _, err := ReplaceAddresses(c.kind, []byte(c.in), repl)
		if err != nil || string(out) != c.out {
			t.Errorf("%d %q: got %q, %v; want %q", c.kind, c.in, out, err, c.out)
		}
	}
}

func TestScanUnchangedSameSlice(t *testing.T) {
	keep := func(string) (string, error) { return "", nil }
	for kind, in := range map[TextKind]string{
		TextPlain:  "hello jane@example.com and bob%40example.org",
		TextHTML:   "<p>jane&#64;example.com</p>",
		TextFolded: "EMAIL:jane@exa\r\n mple.com\r\n",
	} {
		for _, src := range [][]byte{[]byte(in), []byte("no address here %41 &amp;")} {
			out, changed, err := ReplaceAddresses(kind, src, keep)
			if err != nil || changed || &out[0] != &src[0] || len(out) != len(src) {
				t.Errorf("kind %d %q: changed %v, err %v, same slice %v", kind, src, changed, err, &out[0] == &src[0])
			}
		}
	}
	if out, changed, err := ReplaceAddresses(TextHTML, nil, keep); out != nil || changed || err != nil {
		t.Errorf("nil input: %q %v %v", out, changed, err)
	}
}

func TestScanErrorStops(t *testing.T) {
	errLeak := errors.New("leak")
	var seen []string
	out, changed, err := ReplaceAddresses(TextHTML, []byte("a@example.com b&#64;example.com c@example.com"), func(a string) (string, error) {
		seen = append(seen, a)
		if a == "b@example.com" {
			return "", errLeak
		}
		return scanTok, nil
	})
	if err != errLeak || changed || out != nil {
		t.Errorf("got %q, %v, %v; want the error as is", out, changed, err)
	}
	if !slices.Equal(seen, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("fn saw %q: the scan did not stop", seen)
	}
}

// TestScanOrder checks fn sees addresses in text order, tags included.
func TestScanOrder(t *testing.T) {
	var seen []string
	in := `a@example.com <a href="mailto:b@example.com">c<i>@example.com</i></a> <!-- d@example.com --> e@example.com`
	_, _, err := ReplaceAddresses(TextHTML, []byte(in), func(a string) (string, error) {
		seen = append(seen, a)
		return "", nil
	})
	if want := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}; err != nil || !slices.Equal(seen, want) {
		t.Errorf("saw %q, %v; want %q", seen, err, want)
	}
}

func TestScanAllocs(t *testing.T) {
	keep := func(string) (string, error) { return "", nil }
	for kind, in := range map[TextKind]string{
		TextPlain:  strings.Repeat("Nothing to see here, 100% sure. ", 100),
		TextHTML:   strings.Repeat("<p class=x>Nothing &amp; nobody&nbsp;&#8217;</p>\n", 100),
		TextFolded: strings.Repeat("DESCRIPTION:nothing\r\n here\r\n", 100),
	} {
		src := []byte(in)
		if n := testing.AllocsPerRun(20, func() { ReplaceAddresses(kind, src, keep) }); n != 0 {
			t.Errorf("kind %d without addresses: %v allocations", kind, n)
		}
	}
	// With addresses fn must be given strings; beyond those, the pooled
	// scanner allocates nothing.
	for kind, in := range map[TextKind]string{
		TextPlain:  strings.Repeat("Write to jane@example.com today. ", 100),
		TextHTML:   strings.Repeat("<p class=x>Write to <a href=\"mailto:jane@example.com\">jane&#64;example.com</a></p>\n", 50),
		TextFolded: strings.Repeat("ATTENDEE:mailto:jane@exa\r\n mple.com\r\n", 100),
	} {
		src := []byte(in)
		ReplaceAddresses(kind, src, keep)
		if n := testing.AllocsPerRun(20, func() { ReplaceAddresses(kind, src, keep) }); n > 100+1 {
			t.Errorf("kind %d with 100 addresses kept: %v allocations", kind, n)
		}
	}
}

func utf8ValidString(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
