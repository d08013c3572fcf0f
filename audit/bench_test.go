package audit

import (
	"context"
	"testing"
)

// BenchmarkAppend appends one record per call from many goroutines (as
// SMTP sessions do), with and without a sync per batch.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync bool
	}{{"sync=false", false}, {"sync=true", true}} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustOpen(b, Options{Path: testPath(b), Sync: bc.sync})
			defer mustClose(b, l)
			rec := resolved(1)
			b.SetParallelism(32) // goroutines per CPU
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := l.Append(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendSerial is one caller at a time: no batching to share.
func BenchmarkAppendSerial(b *testing.B) {
	l := mustOpen(b, Options{Path: testPath(b)})
	defer mustClose(b, l)
	rec := resolved(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
