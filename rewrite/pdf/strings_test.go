package pdf

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// pdfStrings is the general reading that readStrings is checked against:
// every string of PDF syntax b, literal and hexadecimal, decoded by dec,
// each on a line of its own, then all of them again joined without a
// separator, runs parted by a newline where a dictionary key or delimiter
// parts them (a font change does not).
func pdfStrings(b []byte, dec func(dst, raw []byte) []byte) []byte {
	var lines, joined, raw []byte
	add := func(raw []byte) {
		start := len(lines)
		lines = dec(lines, raw)
		joined = append(joined, lines[start:]...)
		lines = append(lines, '\n')
	}
	for i := 0; i < len(b); {
		switch b[i] {
		case '%':
			j := bytes.IndexAny(b[i:], "\r\n")
			if j < 0 {
				i = len(b)
			} else {
				i += j
			}
			continue
		case '(':
			raw, i = appendLiteral(raw[:0], b, i)
			add(raw)
			continue
		case '/':
			i = nameEnd(b, i)
			if !selectsFont(b[i:]) {
				joined = append(joined, '\n')
			}
			continue
		case '>':
			joined = append(joined, '\n')
		case '<':
			if i+1 < len(b) && b[i+1] == '<' {
				joined = append(joined, '\n')
				i += 2
				continue
			}
			j := bytes.IndexByte(b[i:], '>')
			if j < 0 {
				i = len(b)
				continue
			}
			raw = appendHex(raw[:0], b[i+1:i+j])
			add(raw)
			i += j + 1
			continue
		}
		i++
	}
	return append(append(lines, '\n'), joined...)
}

// addrsIn lists the addresses the scanner finds in text, each once,
// sorted.
func addrsIn(t testing.TB, text []byte) []string {
	t.Helper()
	var out []string
	if _, _, err := scan.ReplaceAddresses(scan.TextPlain, text, func(a string) (string, error) {
		out = append(out, a)
		return "", nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fastAddrs lists what readStrings finds in b, read as it is if plain
// and with each CMap of cms that can make an address.
func fastAddrs(t testing.TB, b []byte, plain bool, cms []*cmap) []string {
	t.Helper()
	var out []string
	s := &scanner{limits: Limits{}.withDefaults(), fn: func(a string) (string, error) {
		out = append(out, a)
		return "", nil
	}}
	var at []*cmap
	for _, cm := range cms {
		if cm.mayShowAt {
			at = append(at, cm)
		}
	}
	if err := s.readStrings(b, plain, at); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// generalAddrs lists what the general reading finds in b with each CMap
// of cms, and as it is if plain.
func generalAddrs(t testing.TB, b []byte, plain bool, cms []*cmap) []string {
	t.Helper()
	var text []byte
	if plain {
		text = append(text, pdfStrings(b, plainString)...)
	}
	for _, cm := range cms {
		text = append(append(text, '\n'), pdfStrings(b, cm.decode)...)
	}
	return addrsIn(t, text)
}

// FuzzStringsPlain: reading only the words around '@' and "%40" finds
// what reading every string, alone and joined, finds, for any input.
func FuzzStringsPlain(f *testing.F) {
	for _, seed := range []string{
		"BT [(jane@exa) 3 (mple.com)] TJ ET",
		"<< /Author <FEFF006A0040> /Title (a\\)b\\100c.de) >>",
		"(\xfe\xff\x00j\x00@) Tj (x(y)z\\\n\\r\\101) <4 0 6a 6> Tj % (not) a string\n(end",
		"/F1 10 Tf (a) Tj /F2 9.5 Tf <6162> Tj << /K (v) >> (w)",
		"<>()<<>>\\(",
		"[(Bitte an ) (jane) (.doe) 3 (@) (example.com) ( schreiben, ) (bob@x.org)] TJ",
		"[(cid:) (jane@example.com) (mid) (:bob@example.org)] TJ (x\\(jane@example.com) Tj",
		"[(mailto:jane%) (40example.com) ( a@b) (.de,c@d.fr)] TJ",
		"(\xfe\xff\x00j\x00 \x00@\x00x\x00.\x00d\x00e) Tj (jane) Tj",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, general := fastAddrs(t, b, true, nil), generalAddrs(t, b, true, nil)
		if !slices.Equal(fast, general) {
			t.Fatalf("fast %q, general %q", fast, general)
		}
	})
}

// FuzzStringsCMap: reading strings through CMaps only near the codes
// that read as '@' or '%' finds what reading every string with every
// CMap finds. The CMaps are made of the fuzzer's bytes: width, then
// entries of a code and the character it reads as.
func FuzzStringsCMap(f *testing.F) {
	f.Add([]byte("BT /F1 9 Tf [<0102> 3 <03040506>] TJ <0708> Tj ET"), []byte("\x01\x01j\x02a\x03@\x04e\x05.\x06d\x07e\x08 "), []byte{})
	f.Add([]byte("[<01020304> -250 <0506070809>] TJ"), []byte("\x01\x01a\x02%\x034\x040\x05b\x06.\x07d\x08e\x09 "), []byte("\x01\x02@"))
	f.Add([]byte("[<00010002> <00030004>] TJ /K <00050006>"), []byte("\x02\x00\x01a\x00\x02@\x00\x03b\x00\x04.\x00\x05d\x00\x06e"), []byte("\x01\x01 "))
	f.Fuzz(func(t *testing.T, b, specA, specB []byte) {
		var cms []*cmap
		for _, spec := range [][]byte{specA, specB} {
			if cm := cmapOf(spec); cm != nil {
				cms = append(cms, cm)
			}
		}
		fast, general := fastAddrs(t, b, false, cms), generalAddrs(t, b, false, cms)
		if !slices.Equal(fast, general) {
			t.Fatalf("fast %q, general %q", fast, general)
		}
	})
}

// cmapOf makes a CMap from a fuzzer's spec: its first byte picks the code
// width (1 to 4), then each entry is a code and one byte naming the text
// it reads as (cmapChars, so that addresses and breaks come often).
func cmapOf(spec []byte) *cmap {
	if len(spec) == 0 {
		return nil
	}
	width := 1 + int(spec[0]%4)
	var src strings.Builder
	src.WriteString(fmt.Sprintf("begincmap 1 begincodespacerange <%s> <%s> endcodespacerange\nbeginbfchar\n",
		strings.Repeat("00", width), strings.Repeat("FF", width)))
	for e := spec[1:]; len(e) >= width+1; e = e[width+1:] {
		text := cmapChars[int(e[width])%len(cmapChars)]
		fmt.Fprintf(&src, "<%X> <%X>\n", e[:width], utf16BE(text))
	}
	src.WriteString("endbfchar endcmap")
	return parseCMap([]byte(src.String()), 1000)
}

var cmapChars = []string{"a", "b", "j", "e", ".", "d", "x", "@", "%", "4", "0", " ", "\n", ",", "-", ":", "c", "i", "(", "é", "連", "\u200b", "a@b", "e.d", "e d"}

func utf16BE(s string) []byte {
	var out []byte
	for _, r := range s {
		if r > 0xFFFF {
			r = 0xFFFD
		}
		out = append(out, byte(r>>8), byte(r))
	}
	return out
}

// TestStringsRandom: readStrings finds what the general reading finds in
// content streams made at random of the forms real files use (TJ arrays
// of one code per string as LibreOffice writes them, of whole words,
// Tj, font changes, dictionary keys, literal strings with escapes).
func TestStringsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2))
	finding := 0
	defer func() {
		t.Logf("%d of 20000 cases find an address", finding)
		if finding < 1000 {
			t.Errorf("only %d of 20000 cases find an address: the test proves little", finding)
		}
	}()
	for n := range 20000 {
		spec := []byte{byte(rng.IntN(4))}
		for range 6 + rng.IntN(10) {
			for range 1 + int(spec[0]) {
				spec = append(spec, byte(rng.IntN(12)))
			}
			spec = append(spec, byte(rng.IntN(len(cmapChars))))
		}
		cm := cmapOf(spec)
		width := cm.width
		var b bytes.Buffer
		for range 1 + rng.IntN(6) {
			switch rng.IntN(5) {
			case 0:
				b.WriteString("/F1 9 Tf ")
			case 1:
				b.WriteString("<< /K ")
			case 2:
				fmt.Fprintf(&b, "(%s) Tj ", []string{"jane", "@ex", ".com", "a b", "x\\100y.de", "%40", "cid:"}[rng.IntN(7)])
			}
			b.WriteString("[")
			for range rng.IntN(12) {
				b.WriteString("<")
				for range 1 + rng.IntN(3) {
					fmt.Fprintf(&b, "%0*X", 2*width, rng.IntN(12))
				}
				b.WriteString("> ")
				if rng.IntN(2) == 0 {
					fmt.Fprintf(&b, "%d ", rng.IntN(500)-250)
				}
			}
			b.WriteString("] TJ\n")
		}
		fast, general := fastAddrs(t, b.Bytes(), true, []*cmap{cm}), generalAddrs(t, b.Bytes(), true, []*cmap{cm})
		if !slices.Equal(fast, general) {
			t.Fatalf("case %d: fast %q, general %q\ncontent %q\ncmap %x", n, fast, general, b.Bytes(), spec)
		}
		if len(general) > 0 {
			finding++
		}
	}
}

// TestReadRunWindows: the words read around a code that reads as '@'
// reach over the strings of the run to the nearest word break on either
// side, and no further.
func TestReadRunWindows(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          string // the words read, one a line
	}{
		{"one string", "(see jane@example.com now) Tj", "jane@example.com\njane@example.com\n"},
		{"split over strings", "[(Bitte an ) (jane) (.doe) 3 (@) (exam) (ple.com) ( schreiben)] TJ",
			"@\njane.doe@example.com\n"},
		{"no break before", "[(x) (jane) (@ex.com)] TJ", "@ex.com\nxjane@ex.com\n"},
		{"a key parts runs", "[(jane)] TJ /K [(@ex.com)] TJ", "@ex.com\n@ex.com\n"},
		{"two in a string", "(a@b.de, c@d.fr) Tj", "a@b.de\nc@d.fr\na@b.de\nc@d.fr\n"},
		{"percent-encoded", "[(mailto:jane) (%40ex.com x)] TJ", "%40ex.com\nmailto:jane%40ex.com\n"},
		{"percent-encoded over strings", "[(mailto:jane%) (4) () (0ex.com)] TJ", "mailto:jane%40ex.com\n"},
		{"percent into UTF-16", "[(jane%) (\\376\\377\\0004\\0000\\000e\\000x\\000.\\000d\\000e)] TJ", "jane%40ex.de\n"},
		{"none", "[(jane) (.doe)] TJ (100%) Tj [(5%) (4)] TJ", ""},
	} {
		s := &scanner{limits: Limits{}.withDefaults()}
		var got []byte
		forRuns([]byte(tc.content), &s.run, func(r *run) { got = s.readRun(got, r, reading{}) })
		if string(got) != tc.want {
			t.Errorf("%s: read %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestBreaksPartText: the scanner finds in a text what it finds in the
// text's pieces parted at any byte of breaks, each on a line of its own:
// no address, and nothing that decides whether one is, reaches over such
// a byte.
func TestBreaksPartText(t *testing.T) {
	texts := []string{
		"jane.doe@example.com", "cid:jane@example.com", "mid:x@y.de", "mailto:jane%40example.com",
		"a@b.de@c.fr", "bounces+jane=example.com@lists.example.org", "?email=jane@example.com",
		"連絡先jane@example.comまで", "jane\u200b@example.com", "x.@y.de", "a..b@c.de", "jane@example.com.",
	}
	for c := 0; c < 256; c++ {
		if !breaks[c] {
			continue
		}
		for _, a := range texts {
			for _, b := range texts {
				joined := addrsIn(t, []byte(a+string(rune(c))+b))
				if c >= 0x80 {
					t.Fatalf("break %#x is not ASCII", c)
				}
				joined2 := addrsIn(t, []byte(a+"\n"+b))
				if !slices.Equal(joined, joined2) {
					t.Errorf("%q: %q parted by %#x, %q by a newline", a+string(rune(c))+b, joined, c, joined2)
				}
			}
		}
	}
}
