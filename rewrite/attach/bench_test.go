package attach

import (
	"context"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/attachcorpus"
)

// BenchmarkOfficeDocx1MB: 1 MB docx files from python-docx opened,
// rewritten and packed again (issue 17 target: ≤ 20 ms on one core;
// docs/benchmarks.md): "picture", text and a picture as most documents
// of that size are; "letter", a text-only one (about 10 MB of XML) naming
// the customer where a letter does (top and signature); "text", the same
// text with an address on every page (every 50th paragraph), the worst
// case for splicing (splice.go).
func BenchmarkOfficeDocx1MB(b *testing.B) {
	for _, c := range []struct {
		name string
		doc  func(testing.TB) []byte
	}{{"picture", attachcorpus.PictureDocx}, {"letter", attachcorpus.LetterDocx}, {"text", attachcorpus.LargeDocx}} {
		b.Run(c.name, func(b *testing.B) {
			doc := c.doc(b)
			r := New(Options{Addr: tokenOf, Enforce: true})
			b.SetBytes(int64(len(doc)))
			b.ResetTimer()
			var out int
			for b.Loop() {
				res, err := r.Part(context.Background(), KindOffice, "large.docx", doc)
				if err != nil || !res.Changed {
					b.Fatalf("%v %v", res.Changed, err)
				}
				out = len(res.Data)
			}
			// The size cost of recompressing at speed: the document
			// written, against the one read.
			b.ReportMetric(float64(out)/float64(len(doc)), "out/in")
		})
		b.Run(c.name+"-guard", func(b *testing.B) {
			doc := c.doc(b)
			r := New(Options{Addr: func(string) (string, error) { return "", nil }})
			b.SetBytes(int64(len(doc)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Part(context.Background(), KindOffice, "large.docx", doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
