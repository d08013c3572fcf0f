package scan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

const scanFuzzTok = "t1-abcdefghijklmnop@relay.company.example"

// FuzzReplaceAddresses checks the property the leak guard rests on: after
// every address is replaced by a token, scanning the output finds that
// token once per replacement and nothing else, whatever the markup, folds
// or encodings around it. It also checks that the input is never written
// to and that an unchanged text comes back as the same slice.
func FuzzReplaceAddresses(f *testing.F) {
	for _, c := range scanPlainCases {
		f.Add(uint8(TextPlain), c.in)
	}
	for _, c := range scanHTMLCases {
		f.Add(uint8(TextHTML), c.in)
	}
	for _, c := range scanFoldedCases {
		f.Add(uint8(TextFolded), c.in)
	}
	f.Add(uint8(TextHTML), "<td>jane@example.com</td><td>bob@example.org</td><p>x</p>a@example.comまで@x.com")
	f.Add(uint8(TextHTML), `<a href='mailto:o'brien@example.com' title=x>&#x6A;ane&#64;example&period;com</a>`)
	f.Add(uint8(TextFolded), "ATTENDEE;CN=\"Doe\\, Jane\":mailto:jane.doe@exam\r\n\tple.com\\,x@y.example\r\n")
	for _, c := range scanRegressions {
		f.Add(uint8(c.kind), c.text)
	}
	for _, c := range scanRTFCases {
		f.Add(uint8(TextRTF), c.in)
	}
	for _, c := range scanFlowedSeeds {
		f.Add(uint8(TextFlowedDelSp), c)
		f.Add(uint8(TextFlowed), c)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		f.Add(uint8(r.IntN(int(scanKinds))), scanSoup(r, 20))
	}
	f.Fuzz(func(t *testing.T, kind uint8, text string) {
		if err := scanNoLeak(TextKind(kind%scanKinds), text); err != nil {
			t.Fatal(err)
		}
	})
}

// scanKinds is how many TextKinds there are.
const scanKinds = uint8(TextRTF) + 1

var scanFlowedSeeds = []string{
	"write to jane.doe@exa \r\nmple.com today\r\n",
	"> a jane@exa \r\n>> mple.com\r\n> x@exa \r\n>  mple.org>\r\n-- \r\nb@c.de \r\n",
	"j \r\n@ \r\ne \r\n. \r\nco \r\nm \r\n>x\r\n",
}

// scanNoLeak checks the no-leak property on one text.
func scanNoLeak(k TextKind, text string) error {
	src := []byte(text)
	replaced := 0
	out, changed, err := ReplaceAddresses(k, src, func(string) (string, error) {
		replaced++
		return scanFuzzTok, nil
	})
	switch {
	case err != nil:
		return err
	case string(src) != text:
		return fmt.Errorf("input modified")
	case changed != (replaced > 0) || !changed && !sameSlice(out, src):
		return fmt.Errorf("changed %v after %d replacements; same slice %v", changed, replaced, sameSlice(out, src))
	}
	seen := 0
	_, _, err = ReplaceAddresses(k, out, func(a string) (string, error) {
		if a != scanFuzzTok {
			return "", fmt.Errorf("%q left in the output", a)
		}
		seen++
		return "", nil
	})
	if err != nil || seen != replaced {
		return fmt.Errorf("kind %d: %v; %d tokens found back of %d\nin:  %q\nout: %q", k, err, seen, replaced, src, out)
	}
	return nil
}

// scanRegressions are texts that once broke the no-leak property.
var scanRegressions = []struct {
	kind TextKind
	text string
}{
	// A match across a block boundary: after the rewrite the boundary
	// parts it from the text that follows.
	{TextHTML, "@example.comp1ai<br>@example.comまで_üt1-abcdefghijklmnopjane@example.comjcid:o'b"},
	// A content line starting with a fold must keep it.
	{TextFolded, "までmailto::<p><jane@例え.jp\r\n\n  jane@example.com@example.com連絡@-"},
	// Refolding must not put an LF after a bare CR.
	{TextFolded, "00000000000000000000000000000000 0@0.AA\r0\n"},
	// An address in a tag name must not make or unmake a block tag.
	{TextHTML, "<td>0@0.AA<td!0@0.AAAAA>0000000000"},
	// A percent-encoded UTF-8 sequence must not span a block boundary.
	{TextHTML, "&#x</b>\\,\\n%40&=example.com.<</b></td>ü連絡='>jane%40example.com%C3<br>%A9jane@example.com@;..x?рф_&jane@example.commid:</td>=example.comp1ai%com%/"},
	// A match must not swallow the quote closing an attribute value.
	{TextHTML, "xn--<a title='連絡&period;o'b@relay.company.exampleb.co<a title='jane%40example.com<br>jane%40example.com"},
	{TextHTML, "&amp;<a title='.o'b'jane&#64;example.com\">mid:j@example.com\">:é"},
	// "cid:" that a previous match ends in, or beyond a block boundary.
	{TextHTML, "jane%40example.com<b>.cid:jane@例え.jp&@xn--\\njane@例え.jp<!--</td>\\,\\"},
	{TextPlain, "<!--\">-;@jane%40example.com.cid:jane@example.com"},
	{TextHTML, "</td>%A9&commat;<b>relay.company.exampleрф@example.com.é<p>mid:jane@example.com\">"},
	{TextHTML, "jane&#64;example.com._jane&#64;example.com.é<p>cid:jane@例え.jp\r\né&amp;\\%C3%40 \r\n&amp;&#example@example.comjane@例え.jp"},
}

func TestScanRegressions(t *testing.T) {
	for _, c := range scanRegressions {
		if err := scanNoLeak(c.kind, c.text); err != nil {
			t.Error(err)
		}
	}
}

// TestScanSoup checks the no-leak property on texts stirred together from
// the pieces addresses and their surroundings are made of: the fuzzer
// rarely assembles "jane", "<span>", "&#64;" and "example.com" by itself.
func TestScanSoup(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 100000
	if testing.Short() {
		n = 10000
	}
	for range n {
		text := scanSoup(r, 24)
		for k := TextPlain; k <= TextFolded; k++ {
			if err := scanNoLeak(k, text); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var scanSoupParts = strings.Split("@ @ @ %40 &#64; &commat; &#64 <b> </b> <p> </td> <br> < > & &# &#x x &amp; "+
	"\r\n| \n| \r\n \n \r \\ \\n \\, \\\\ cid: mid: まで 連絡 é ü рф jane j 1 example . .. com - _ ' \" = ? / # | % %2 %C3 %A9 "+
	"xn-- p1ai t1-abcdefghijklmnop relay.company.example <!-- --> <a|href=\" \"> <a|title=' '> ; : mailto: \u200b \u00a0 "+
	"jane@example.com jane@例え.jp jane%40example.com @example.com example.com b.co jane&#64;example.com o'b &period; &lt; &#46; "+
	"bounces+ =example.com", " ")

// scanSoup returns up to n pieces stirred together ('|' stands for a space).
func scanSoup(r *rand.Rand, n int) string {
	var sb strings.Builder
	for range 1 + r.IntN(n) {
		sb.WriteString(strings.ReplaceAll(scanSoupParts[r.IntN(len(scanSoupParts))], "|", " "))
	}
	return sb.String()
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) && bytes.Equal(a, b)
}
