package pdf

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// FuzzSkip: a stream mayHit says no to has no string that any reading
// (as it is, and with each CMap made of the fuzzer's bytes, as
// FuzzStringsCMap makes them) names in hitStrings, so it has no word to
// read: skipping it loses nothing. The general check (readStrings, skip
// included, against every string read) is FuzzStringsPlain's and
// FuzzStringsCMap's.
func FuzzSkip(f *testing.F) {
	// CMap specs as cmapOf reads them: a width byte, then codes each
	// followed by an index into cmapChars (7 '@', 8 '%', 0 'a', 2 'j').
	glyphs := "BT 56.8 775.889 Td /F1 10 Tf[<01>2<02>2<03>-7<04>2<05>]TJ ET\nQ q 0 0 0 rg\n"
	f.Add([]byte(glyphs), []byte("\x00\x01\x02\x02\x00\x03\x07\x04\x03\x05\x04"), []byte{}, true)
	f.Add([]byte(glyphs), []byte("\x00\x01\x02\x02\x00\x06\x07\x04\x03"), []byte("\x00\x25\x08"), true)
	f.Add([]byte("[<0102 03>2<0 3>2<2>2<4>]TJ <<<03>> %<03>\n"), []byte("\x00\x03\x07\x20\x08"), []byte{}, false)
	f.Add([]byte("[<FEFF0025> <254> <2534>] TJ"), []byte{}, []byte("\x01\x00\x25\x07"), true)
	f.Add([]byte("[(a\\100b) <40>] TJ /F1 9 Tf <00220023> Tj"), []byte("\x01\x00\x22\x07\x00\x23\x00"), []byte("\x02\x00\x00\x22\x08"), false)
	f.Add([]byte("<< /K <6a61> >> <2a2A> <"), []byte("\x00\x2a\x07"), []byte{}, true)
	f.Fuzz(func(t *testing.T, b, specA, specB []byte, plain bool) {
		var cms []*cmap
		for _, spec := range [][]byte{specA, specB} {
			if cm := cmapOf(spec); cm != nil && cm.mayShowAt {
				cms = append(cms, cm)
			}
		}
		var set [256]bool
		hitBytes(&set, plain, cms)
		if mayHit(b, &set) {
			return
		}
		s := &scanner{limits: Limits{}.withDefaults()}
		readings := []reading{}
		if plain {
			readings = append(readings, reading{})
		}
		for _, cm := range cms {
			readings = append(readings, reading{cm})
		}
		forRuns(b, &s.run, func(r *run) {
			for _, rd := range readings {
				if hits := s.hitStrings(nil, r, rd); len(hits) > 0 {
					t.Fatalf("skipped, but string %q is a hit (reading %d)", r.str(hits[0]), len(readings))
				}
			}
		})
		if words := s.stringWords(b, plain, cms); len(words) > 0 {
			t.Fatalf("skipped, but %q is read", words)
		}
	})
}

// TestMayHit: mayHit says no only where every string is digit pairs with
// no byte of the table; a literal string, a comment or any other form of
// hexadecimal string gets a yes.
func TestMayHit(t *testing.T) {
	var set [256]bool
	set[0x22], set['@'] = true, true
	for _, tc := range []struct {
		name, b string
		want    bool
	}{
		{"glyphs", "BT /F1 10 Tf[<01>2<02>-7<2a>2<2A>]TJ ET", false},
		{"the '@' code", "[<01>2<22>2<03>]TJ", true},
		{"in a longer string", "<01022203> Tj", true},
		{"misaligned", "<0122> Tj <1220> Tj", true},
		{"digits outside strings", "72 722.22 Td 40 Tz <01> Tj", false},
		{"dictionaries", "<< /K <0102> >> <<<03>>>", false},
		{"'@' in a dictionary's string", "<</K <40>>>", true},
		{"a literal string", "(abc) Tj", true},
		{"a comment", "% x\n<01> Tj", true},
		{"white space in a string", "<01 02> Tj", true},
		{"an odd digit", "<012> Tj", true},
		{"unclosed", "<0102", true},
		{"a '<' at the end", "<01> Tj <", true},
		{"no strings", "0 0 1 rg 10 10 m 20 20 l S", false},
		{"empty string", "<> Tj", false},
	} {
		if got := mayHit([]byte(tc.b), &set); got != tc.want {
			t.Errorf("%s: mayHit(%q) = %v, want %v", tc.name, tc.b, got, tc.want)
		}
	}
}

// TestHitBytes: the plain reading's bytes are '@', '4' and 0xFE (a '%'
// alone makes no hit), a CMap's the first bytes of its codes for '@' and
// '%'.
func TestHitBytes(t *testing.T) {
	var set [256]bool
	hitBytes(&set, true, nil)
	if !set['@'] || !set['4'] || !set[0xFE] || set['%'] {
		t.Errorf("plain: '@' %v, '4' %v, 0xFE %v, '%%' %v", set['@'], set['4'], set[0xFE], set['%'])
	}
	cm := cmapOf([]byte("\x01\x00\x22\x07\x07\x01\x00\x30\x40\x08")) // width 2: '@', 'a', '%' (cmapChars)
	hitBytes(&set, false, []*cmap{cm})
	for c, want := range map[int]bool{0x00: true, 0x07: false, 0x30: true, 0x22: false, '@': false} {
		if set[c] != want {
			t.Errorf("CMap: byte %#x in the set: %v, want %v", c, set[c], want)
		}
	}
}

// TestScanLibreOfficeSkips: in a LibreOffice export of several pages, the
// pages whose glyphs include no code for '@' are not tokenized (mayHit),
// and the address on the one page that has it is found, as pdftotext
// sees it.
func TestScanLibreOfficeSkips(t *testing.T) {
	if testing.Short() {
		t.Skip("LibreOffice")
	}
	var text strings.Builder
	for line := range 200 {
		fmt.Fprintf(&text, "Position %d Beratung und Lieferung, Betrag %d,00 EUR\n", line, line*7)
		if line == 150 {
			text.WriteString("Fragen an jane.doe@example.com bitte\n")
		}
	}
	doc := textforms.LibreOfficePDF(t, text.String())
	if got := textforms.PDFText(t, doc); !strings.Contains(got, "jane.doe@example.com") {
		t.Fatalf("pdftotext does not see the address: the test proves nothing")
	}
	var found [2][]string
	skipped := 0
	for k, noSkip := range []bool{false, true} {
		s := &scanner{limits: Limits{}.withDefaults(), noSkip: noSkip, fn: func(a string) (string, error) {
			found[k] = append(found[k], a)
			return "", nil
		}}
		if err := s.file(doc); err != nil {
			t.Fatal(err)
		}
		if !noSkip {
			skipped = s.skipped
		}
	}
	if !slices.Equal(found[0], []string{"jane.doe@example.com"}) || !slices.Equal(found[0], found[1]) {
		t.Fatalf("found %q; without the skip %q", found[0], found[1])
	}
	if skipped < 2 {
		t.Fatalf("%d streams skipped: the pages without '@' were tokenized", skipped)
	}
}
