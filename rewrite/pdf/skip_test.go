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
// read: skipping it loses nothing. A stream it says yes to reads the same
// words tokenized from where it says as tokenized whole. The general
// check (readStrings against every string read) is FuzzStringsPlain's
// and FuzzStringsCMap's.
func FuzzSkip(f *testing.F) {
	// CMap specs as cmapOf reads them: a width byte, then codes each
	// followed by an index into cmapChars (7 '@', 8 '%', 0 'a', 2 'j',
	// 11 ' ').
	glyphs := "BT 56.8 775.889 Td /F1 10 Tf[<01>2<02>2<03>-7<04>2<05>]TJ ET\nQ q 0 0 0 rg\n"
	f.Add([]byte(glyphs), []byte("\x00\x01\x02\x02\x00\x03\x07\x04\x03\x05\x04"), []byte{}, true)
	f.Add([]byte(glyphs), []byte("\x00\x01\x02\x02\x00\x06\x07\x04\x03"), []byte("\x00\x25\x08"), true)
	f.Add([]byte("[<01>2<08>2<02>-7<08>2<01>2<03>2<04>]TJ"), []byte("\x00\x01\x02\x02\x00\x03\x07\x04\x03\x08\x0b"), []byte{}, false)
	f.Add([]byte("[<0108> 2 <0201>2<08>2<0103>]TJ /K <0108> <03>"), []byte("\x00\x01\x02\x02\x00\x03\x07\x08\x0b"), []byte("\x00\x08\x0b"), true)
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
		if !plain && len(cms) == 0 {
			return // readStrings reads nothing
		}
		var table skipTable
		hitBytes(&table, plain, cms)
		from, hit := mayHit(b, &table)
		s := &scanner{limits: Limits{}.withDefaults()}
		whole := string(s.stringWords(b, plain, cms))
		if hit {
			if part := string(s.stringWords(b[from:], plain, cms)); part != whole {
				t.Fatalf("tokenized from %d: %q; whole: %q", from, part, whole)
			}
			return
		}
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
					t.Fatalf("skipped, but string %q is a hit", r.str(hits[0]))
				}
			}
		})
		if whole != "" {
			t.Fatalf("skipped, but %q is read", whole)
		}
	})
}

// TestMayHit: mayHit says no only where every string is digit pairs with
// no hit byte; a literal string, a comment or any other form of
// hexadecimal string gets a yes. With a yes, the stream is tokenized from
// the last string before the hit with a cut byte.
func TestMayHit(t *testing.T) {
	var table skipTable
	table[0x22], table['@'], table[0x08], table[0x09] = hitByte, hitByte, cutByte, cutByte
	for _, tc := range []struct {
		name, b string
		hit     bool
		from    int
	}{
		{"glyphs", "BT /F1 10 Tf[<01>2<02>-7<2a>2<2A>]TJ ET", false, 0},
		{"the '@' code", "[<01>2<22>2<03>]TJ", true, 0},
		{"after a space", "[<01>2<08>2<01>-7<22>2<08>]TJ", true, 6},
		{"after the last space", "[<08>2<08>2<01>-7<22>2<08>]TJ", true, 6},
		{"a space in a longer string", "[<0109> 2 <0801>2<01>-7<0122>]TJ", true, 10},
		{"a space in the hit's own string", "[<08>2<0801>2<0822>]TJ", true, 6},
		{"in a longer string", "<01022203> Tj", true, 0},
		{"misaligned", "<0122> Tj <1220> Tj", true, 0},
		{"digits outside strings", "72 722.22 Td 40 Tz <01> Tj", false, 0},
		{"dictionaries", "<< /K <0102> >> <<<03>>>", false, 0},
		{"'@' in a dictionary's string", "<</K <40>>>", true, 0},
		{"a literal string", "<08> (abc) Tj <22>", true, 0},
		{"a comment", "<08> % x\n<22> Tj", true, 0},
		{"white space in a string", "<08> <01 02> Tj", true, 0},
		{"an odd digit after a space", "<08> <012> Tj", true, 0},
		{"unclosed", "<08> <0102", true, 0},
		{"a '<' at the end", "<01> Tj <", true, 0},
		{"no strings", "0 0 1 rg 10 10 m 20 20 l S", false, 0},
		{"empty string", "<> Tj", false, 0},
	} {
		if from, hit := mayHit([]byte(tc.b), &table); hit != tc.hit || from != tc.from {
			t.Errorf("%s: mayHit(%q) = %d, %v, want %d, %v", tc.name, tc.b, from, hit, tc.from, tc.hit)
		}
	}
}

// TestHitBytes: the plain reading's hits are '@', '4' and 0xFE (a '%'
// alone makes no hit), a CMap's the first bytes of its codes for '@' and
// '%'; a cut byte is one that every reading reads as a break, and a CMap
// of wider codes has none.
func TestHitBytes(t *testing.T) {
	var table skipTable
	hitBytes(&table, true, nil)
	for c, want := range map[int]uint8{'@': hitByte, '4': hitByte, 0xFE: hitByte, '%': 0, ' ': cutByte, 0x08: cutByte, '(': cutByte, 'a': 0} {
		if table[c] != want {
			t.Errorf("plain: byte %#x is %b, want %b", c, table[c], want)
		}
	}
	// width 1: 0x22 '@', 0x07 ' ', 0x30 '%', 0x08 'a'
	one := cmapOf([]byte("\x00\x22\x07\x07\x0b\x30\x08\x08\x00"))
	hitBytes(&table, true, []*cmap{one})
	for c, want := range map[int]uint8{0x22: hitByte, 0x30: hitByte, '@': hitByte, 0x07: cutByte, 0x08: 0, ' ': 0} {
		if table[c] != want {
			t.Errorf("plain and a CMap: byte %#x is %b, want %b", c, table[c], want)
		}
	}
	// width 2: '@', 'a', '%'
	two := cmapOf([]byte("\x01\x00\x22\x07\x07\x01\x00\x30\x40\x08"))
	hitBytes(&table, false, []*cmap{one, two})
	for c, want := range map[int]uint8{0x00: hitByte, 0x30: hitByte, 0x22: hitByte, 0x07: 0, '@': 0} {
		if table[c] != want {
			t.Errorf("two CMaps: byte %#x is %b, want %b", c, table[c], want)
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
