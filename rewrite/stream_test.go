package rewrite

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// attachmentMessage streams a message with a text part and one base64
// attachment of n bytes, generated on the fly.
func attachmentMessage(n int64) io.Reader {
	head := "From: Jane <jane@example.net>\r\nTo: support@company.example\r\nSubject: big\r\n" +
		"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\n" +
		"see attachment, jane@example.net\r\n--zz\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"
	line := []byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n")
	lines := n / 57
	body := io.LimitReader(repeatReader(line), lines*int64(len(line)))
	return io.MultiReader(bytes.NewReader([]byte(head)), body, bytes.NewReader([]byte("--zz--\r\n")))
}

type repeated struct {
	b   []byte
	off int
}

func repeatReader(b []byte) io.Reader { return &repeated{b: b} }

func (r *repeated) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// TestLargeAttachmentBoundedHeap: a 100 MB attachment streams through;
// peak heap stays far below its size (issue 3: bodies flow in bounded
// memory).
func TestLargeAttachmentBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB stream")
	}
	rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxMessageBytes: 200 << 20}})
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	var n countingWriter
	_, err := rw.Inbound(context.Background(), &n, attachmentMessage(100<<20))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n.n < 100<<20 {
		t.Fatalf("only %d bytes written", n.n)
	}
	t.Logf("100 MB attachment: %d bytes out, peak heap in use %d MiB", n.n, peak.Load()>>20)
	if peak.Load() > 48<<20 {
		t.Fatalf("peak heap %d MiB grows with the attachment", peak.Load()>>20)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
