package scan

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// scanPieces scans text in pieces cut where HTMLCut allows, as a streamed
// part is: a piece ends at the first safe cut at least min bytes long
// that the bytes read so far (whole lines) show. It returns what fn saw
// and the pieces' outputs joined.
func scanPieces(t *testing.T, kind TextKind, text []byte, min int) ([]string, []byte, int) {
	t.Helper()
	var found []string
	var out []byte
	fn := func(a string) (string, error) { found = append(found, a); return scanTok, nil }
	cutter := func(src []byte, from int) (int, int) { return LineCut(kind, src, from) }
	if kind == TextHTML {
		cutter = HTMLCut
	}
	scanOne := func(p []byte) {
		o, _, err := ReplaceAddresses(kind, p, fn)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o...)
	}
	start, resume, cut, pieces := 0, 0, -1, 0
	for p := 0; p < len(text); {
		nl := bytes.IndexByte(text[p:], '\n')
		if nl < 0 {
			break
		}
		p += nl + 1
		c, r := cutter(text[start:p], resume)
		resume = r
		if c >= 0 {
			cut = c
		}
		if cut >= min {
			scanOne(text[start : start+cut])
			pieces++
			start += cut
			resume, cut = max(resume-cut, 0), -1
			if resume > 0 {
				// Resume is never before a cut: re-read from the start.
				resume = 0
			}
		}
	}
	scanOne(text[start:])
	return found, out, pieces + 1
}

// TestHTMLCutPiecesMatchWhole: HTML scanned in the pieces HTMLCut allows
// finds the same addresses and writes the same text as HTML scanned
// whole, on texts stirred from the pieces addresses and markup are made
// of, with line ends inside tags, comments, references and addresses.
func TestHTMLCutPiecesMatchWhole(t *testing.T) { testPiecesMatchWhole(t, TextHTML) }

// TestLineCutPiecesMatchWhole: the same for flowed text and for
// iCalendar and vCard text, cut where LineCut allows.
func TestLineCutPiecesMatchWhole(t *testing.T) {
	for _, k := range []TextKind{TextFlowed, TextFlowedDelSp, TextFolded} {
		testPiecesMatchWhole(t, k)
	}
}

func testPiecesMatchWhole(t *testing.T, kind TextKind) {
	r := rand.New(rand.NewPCG(3, 17))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	cuts := 0
	for range n {
		text := []byte(scanSoup(r, 60))
		if kind == TextFolded {
			// A refolded last line without a line end takes the text's
			// first line end (scContentLine): a piece's may differ from
			// the whole's where a text mixes CRLF and LF, which a
			// message never does (bare LF is refused in SMTP, and a
			// file read by proxy rewrite has one kind).
			text = bytes.ReplaceAll(text, []byte("\r"), nil)
			if r.IntN(2) == 0 {
				text = bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n"))
			}
		}
		if kind == TextFlowed || kind == TextFlowedDelSp {
			// Soft breaks (a space before the line end) in half the
			// lines, which the soup alone rarely makes.
			var b []byte
			for _, l := range bytes.SplitAfter(text, []byte("\n")) {
				if r.IntN(2) == 0 && bytes.HasSuffix(l, []byte("\n")) {
					l = append(append(bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r")), ' '), "\r\n"...)
				}
				b = append(b, l...)
			}
			text = b
		}
		var found []string
		out, _, err := ReplaceAddresses(kind, text, func(a string) (string, error) {
			found = append(found, a)
			return scanTok, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		whole := append([]byte(nil), out...)
		pf, pout, pieces := scanPieces(t, kind, text, 1+r.IntN(8))
		cuts += pieces - 1
		if !slices.Equal(pf, found) || !bytes.Equal(pout, whole) {
			t.Fatalf("kind %d: pieces differ from whole for %q:\nfound %q\nwant  %q\nout  %q\nwant %q", kind, text, pf, found, pout, whole)
		}
	}
	if cuts < n/4 {
		t.Errorf("kind %d: only %d cuts in %d texts: the test does not test cutting", kind, cuts, n)
	}
}

// TestHTMLCut: where a text may be cut, and where reading resumes.
func TestHTMLCut(t *testing.T) {
	tests := []struct {
		src         string
		from        int
		cut, resume int
	}{
		{"", 0, -1, 0},
		{"no line end", 0, 8, 11}, // white space in text cuts as a line end does
		{"nospace", 0, -1, 7},
		{"a\tb<i>c", 0, 2, 7},
		{"a<i title='x y'>b", 0, -1, 17}, // not in a tag
		{"a\nb\n", 0, 4, 4},
		{"a\n<b>c\n", 0, 7, 7},
		{"a\n<span\nclass=x>", 0, 2, 2},              // the tag ends at the last byte: not known to be whole
		{"a\n<span\nclass=x>b", 0, 2, 17},            // the line end inside the tag is no cut
		{"a\n<a title=\"x\ny\n", 0, 2, 2},            // an open quoted value
		{"a\n<!-- x\ny\n", 0, 2, 2},                  // an open comment
		{"a\n<!-- x\ny -->z\n", 0, 16, 16},           // a closed one
		{"a\n<", 0, 2, 2},                            // a '<' at the end
		{"a\n< b\nc\n", 0, 8, 8},                     // a '<' that opens no tag is text
		{"jane\n<b\n>@</b>example.com\n", 0, 26, 26}, // the address is parted by a line end in text
		{"a\n<b>c\nd\n", 5, 9, 9},                    // read on from a resume point
	}
	for _, tt := range tests {
		cut, resume := HTMLCut([]byte(tt.src), tt.from)
		if cut != tt.cut || resume != tt.resume {
			t.Errorf("HTMLCut(%q, %d) = %d, %d; want %d, %d", tt.src, tt.from, cut, resume, tt.cut, tt.resume)
		}
	}
}

// TestScanHTMLPercentTag: "%40" written with a tag or references inside
// it is scanned in a text that holds nothing else of an address, as it is
// in one that does: whether a piece is scanned must not depend on the
// rest of the part.
func TestScanHTMLPercentTag(t *testing.T) {
	for _, in := range []string{
		`<a href="x">jane%<b>40</b>example.com</a>`,
		`jane%4<b>0</b>example.com`,
		`jane%&#52;&#48;example.com`,
		`<a href="mailto:jane%&#52;0example.com">x</a>`,
	} {
		out, changed, err := ReplaceAddresses(TextHTML, []byte(in), func(string) (string, error) { return scanTok, nil })
		if err != nil || !changed || strings.Contains(string(out), "example.com") {
			t.Errorf("%q: out %q, changed %v, err %v", in, out, changed, err)
		}
	}
}

// TestLineCut: where flowed and folded texts may be cut.
func TestLineCut(t *testing.T) {
	tests := []struct {
		kind        TextKind
		src         string
		cut, resume int
	}{
		{TextFlowed, "ab \r\ncd\r\n", 9, 9},    // not after a soft break
		{TextFlowed, "ab \r\ncd", -1, 5},       // a line not over yet
		{TextFlowed, "-- \r\nsig\r\n", 10, 10}, // the signature separator is no soft break
		{TextFlowedDelSp, "> ab \r\n> cd\r\n", 13, 13},
		{TextFlowedDelSp, "ab\ncd \n", 3, 7},
		{TextFolded, "A:x\r\n y\r\nB:z\r\n", 9, 9}, // not before a fold; the last line end's next byte is unknown
		{TextFolded, "A:x\r\n\r\n y", -1, 7},       // nor before an empty line
		{TextFolded, "A:x\nB:y\nC", 8, 8},
	}
	for _, tt := range tests {
		cut, resume := LineCut(tt.kind, []byte(tt.src), 0)
		if cut != tt.cut || resume != tt.resume {
			t.Errorf("LineCut(%d, %q) = %d, %d; want %d, %d", tt.kind, tt.src, cut, resume, tt.cut, tt.resume)
		}
	}
	// An address a soft break or a fold cuts in two is never cut apart.
	for _, c := range []struct {
		kind TextKind
		text string
	}{
		{TextFlowedDelSp, "x\r\njane.doe@exa \r\nmple.com and more\r\ny\r\n"},
		{TextFlowed, "x\r\njane.doe@example.com \r\n> and more\r\ny\r\n"},
		{TextFolded, "X:x\r\nATTENDEE:mailto:jane.doe@exa\r\n mple.com\r\nY:y\r\n"},
	} {
		var found []string
		want, _, _ := ReplaceAddresses(c.kind, []byte(c.text), func(a string) (string, error) {
			found = append(found, a)
			return scanTok, nil
		})
		pf, pout, _ := scanPieces(t, c.kind, []byte(c.text), 1)
		if !slices.Equal(pf, found) || string(pout) != string(want) || len(found) != 1 {
			t.Errorf("%q: pieces found %q, wrote %q; whole %q, %q", c.text, pf, pout, found, want)
		}
	}
}
