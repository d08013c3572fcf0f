package rewrite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/header"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// FuzzRewrite feeds arbitrary messages to the whole inbound rewriter and
// the outbound one. Neither may panic; a failure must be one of the typed
// refusals (a leak-guard refusal included: it fails closed); and a message
// that passed inbound must also pass the guard run on its own.
func FuzzRewrite(f *testing.F) {
	files, _ := filepath.Glob("testdata/rewrite/*.eml")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte("From: a@b.example\r\n\r\nx"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nTo: c@d.example\r\n--a--\r\n"))
	rw, _ := newTestRewriter(f, RewriteOptions{Limits: Limits{MaxMessageBytes: 1 << 20}})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		_, err := rw.Inbound(context.Background(), &out, bytes.NewReader(msg))
		if err != nil {
			if !typedRefusal(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if err := rw.Guard(context.Background(), bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("inbound output fails a separate guard run: %v", err)
		}
		var back bytes.Buffer
		if _, err := rw.Outbound(context.Background(), &back, bytes.NewReader(out.Bytes())); err != nil && !typedRefusal(err) {
			t.Fatalf("outbound: untyped error: %v", err)
		}
	})
}

func typedRefusal(err error) bool {
	for _, e := range []error{ErrLimit, ErrTooManyNewTokens, ErrUnscannable, ErrMalformedAddress, ErrLeak, tokenize.ErrUnknownToken, header.ErrUnparsableHeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
