package pdf

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/textforms"
)

// BenchmarkScan1MB: a 1 MB PDF of compressed text pages, as invoices and
// statements are, scanned whole (issue 17: ≤ 20 ms on one core).
func BenchmarkScan1MB(b *testing.B) {
	var objs []string
	for size := 0; size < 1<<20; {
		var page bytes.Buffer
		for line := 0; line < 400; line++ {
			fmt.Fprintf(&page, "BT /F1 10 Tf 72 %d Td [(Position %d: Beratung und Lieferung, Betrag) -250 (%d,00 EUR) ] TJ ET\n", 800-line, line, line*7)
		}
		page.WriteString("BT (Fragen an jane.doe@example.com) Tj ET\n")
		s := streamObj("/Filter /FlateDecode", flate(page.Bytes()))
		objs = append(objs, s)
		size += len(s)
	}
	benchScan(b, handPDF(objs...), true)
}

// BenchmarkScan1MBImages: a 1 MB PDF of one text page and Flate-compressed
// pictures (/Subtype /Image, as PNG pictures are embedded: DCT pictures are
// not decoded at all), scanned whole.
func BenchmarkScan1MBImages(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	objs := []string{streamObj("/Filter /FlateDecode", flate([]byte("BT (Fragen an jane.doe@example.com) Tj ET")))}
	for size := 0; size < 1<<20; {
		pixels := make([]byte, 3*256*256) // a photo-like RGB picture: noise on a gradient
		for i := range pixels {
			pixels[i] = byte(i/768) + byte(rng.IntN(24))
		}
		s := streamObj("/Type /XObject /Subtype /Image /Width 256 /Height 256 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode", flate(pixels))
		objs = append(objs, s)
		size += len(s)
	}
	benchScan(b, handPDF(objs...), false)
}

// BenchmarkScan1MBCMap: BenchmarkScan1MB's pages shown in a subset font's
// codes, as LibreOffice writes them (hex strings read through ToUnicode
// CMaps that font dictionaries name, the fonts and CMaps after the
// pages): two CMaps of letters only and one that maps a code to '@'.
// Unnamed: no font names the CMaps, so the pages are read before their
// CMap is known, and decoded again for it. Glyphs: each code a string of
// its own with a kerning number between, as LibreOffice writes a line
// ("[<01>2<02>2<03>]TJ").
func BenchmarkScan1MBCMap(b *testing.B) {
	for _, tc := range []struct {
		name          string
		named, glyphs bool
	}{{"named", true, false}, {"unnamed", false, false}, {"glyphs", true, true}} {
		b.Run(tc.name, func(b *testing.B) { benchScan(b, cmapPDF(tc.named, tc.glyphs), true) })
	}
}

// cmapPDF is BenchmarkScan1MBCMap's file.
func cmapPDF(named, glyphs bool) []byte {
	show := shifted
	if glyphs {
		show = shiftedGlyphs
	}
	letters := "begincmap 1 beginbfrange <01> <1A> <0061> endbfrange endcmap"
	objs := []string{
		streamObj("/Filter /FlateDecode", flate([]byte(letters))),
		streamObj("/Filter /FlateDecode", flate([]byte(strings.Replace(letters, "0061", "0041", 1)))),
	}
	for size := 0; size < 1<<20; {
		var page bytes.Buffer
		for line := 0; line < 400; line++ {
			fmt.Fprintf(&page, "BT /F1 10 Tf 72 %d Td [%s -250 %s] TJ ET\n", 800-line,
				show(fmt.Sprintf("Position %d: Beratung und Lieferung, Betrag", line)), show(fmt.Sprintf("%d,00 EUR", line*7)))
		}
		page.WriteString("BT [" + show("Fragen an jane.doe@example.com") + "] TJ ET\n")
		s := streamObj("/Filter /FlateDecode", flate(page.Bytes()))
		objs = append(objs, s)
		size += len(s)
	}
	objs = append(objs, streamObj("/Filter /FlateDecode", flate([]byte(shiftedCMap))))
	if named {
		for _, cm := range []int{1, 2, len(objs)} {
			objs = append(objs, fmt.Sprintf("<< /Type /Font /Subtype /TrueType /BaseFont /BAAAAA+Sans /ToUnicode %d 0 R >>", cm))
		}
	}
	return handPDF(objs...)
}

// shiftedCMap maps code c to the character c+0x20, as a subset font's
// codes are no characters: "@" is shown as <20>.
const shiftedCMap = "begincmap 1 begincodespacerange <00> <FF> endcodespacerange\n" +
	"1 beginbfrange <00> <5E> <0020> endbfrange endcmap"

// shifted returns text in shiftedCMap's codes, as a hex string.
func shifted(text string) string {
	b := []byte(text)
	for i := range b {
		b[i] -= 0x20
	}
	return "<" + hex.EncodeToString(b) + ">"
}

// shiftedGlyphs returns text in shiftedCMap's codes, each code a hex
// string of its own followed by a kerning number.
func shiftedGlyphs(text string) string {
	var out strings.Builder
	for _, c := range []byte(text) {
		fmt.Fprintf(&out, "<%02x>2", c-0x20)
	}
	return out.String()
}

// BenchmarkScanLibreOffice1MB: a PDF of about 1 MB that LibreOffice
// Writer exported from text (19,000 lines of invoice words and amounts, an
// address every 500 lines): subset fonts, each glyph a string of its own,
// CMaps after the pages. Made once per test binary (a few seconds).
func BenchmarkScanLibreOffice1MB(b *testing.B) {
	benchScan(b, libreOffice1MB(b), true)
}

// benchScan scans doc, which names an address, b.N times, and reports the
// process's CPU time per scan (LibreOffice's, and other processes' on a
// shared machine, kept out) and, with decoded, how many bytes its streams
// decode to per byte of the file.
func benchScan(b *testing.B, doc []byte, decoded bool) {
	if decoded {
		s := &scanner{limits: Limits{}.withDefaults(), fn: func(string) (string, error) { return "", nil }}
		if err := s.file(doc); err != nil {
			b.Fatal(err)
		}
		defer b.ReportMetric(float64(s.decoded)/float64(len(doc)), "decoded/raw")
	}
	b.SetBytes(int64(len(doc)))
	before := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		n, err := Scan(doc, Limits{}, func(string) (string, error) { return "t@x.example", nil })
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time (user and system) this process has used: on a
// machine shared with others' builds, wall time per operation measures
// them too, and timing the test binary from outside counts LibreOffice.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// libreOfficeText is BenchmarkScanLibreOffice1MB's text.
func libreOfficeText() string {
	rng := rand.New(rand.NewPCG(17, 1))
	words := strings.Fields("Rechnung Position Beratung Lieferung Betrag Kunde Auftrag Menge Preis Summe Steuer Zahlung Frist Konto Bank Lager Artikel Versand Rabatt Gesamt")
	var text strings.Builder
	for line := range 19000 {
		for range 8 {
			text.WriteString(words[rng.IntN(len(words))] + " ")
		}
		fmt.Fprintf(&text, "%d,%02d EUR", rng.IntN(9999), rng.IntN(100))
		if line%500 == 0 {
			text.WriteString(" Fragen an jane.doe@example.com")
		}
		text.WriteString("\n")
	}
	return text.String()
}

var libreOfficeCache struct {
	sync.Mutex
	doc []byte
}

func libreOffice1MB(b *testing.B) []byte {
	libreOfficeCache.Lock()
	defer libreOfficeCache.Unlock()
	if libreOfficeCache.doc == nil {
		libreOfficeCache.doc = textforms.LibreOfficePDF(b, libreOfficeText())
	}
	return libreOfficeCache.doc
}
