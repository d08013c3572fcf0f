package pdf

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
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
	doc := handPDF(objs...)
	s := &scanner{limits: Limits{}.withDefaults(), fn: func(string) (string, error) { return "", nil }}
	if err := s.file(doc); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for range b.N {
		n, err := Scan(doc, Limits{}, func(string) (string, error) { return "t@x.example", nil })
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(s.decoded)/float64(len(doc)), "decoded/raw")
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
	doc := handPDF(objs...)
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for range b.N {
		n, err := Scan(doc, Limits{}, func(string) (string, error) { return "t@x.example", nil })
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
	}
}
