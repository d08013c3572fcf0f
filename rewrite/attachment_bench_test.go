package rewrite

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/tokenproxy/tokenproxy/test/attachcorpus"
)

// BenchmarkRewriteInboundDocx1MB: a message carrying a 1 MB docx (text
// and a picture, from python-docx), the whole inbound path: base64
// decoded, the document rewritten and packed, encoded again, and the leak
// guard reading the result (docs/benchmarks.md).
func BenchmarkRewriteInboundDocx1MB(b *testing.B) {
	rw, _ := newTestRewriter(b, RewriteOptions{})
	msg := withAttachment(docType, "large.docx", attachcorpus.PictureDocx(b))
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for b.Loop() {
		rep, err := rw.Inbound(context.Background(), io.Discard, bytes.NewReader(msg))
		if err != nil || rep.Changed == 0 {
			b.Fatalf("%v %+v", err, rep)
		}
	}
}
