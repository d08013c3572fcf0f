package rewrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Issue 17, item 7: a message's peak cost is a small multiple of what must
// be held. BenchmarkTextPartRSS rewrites one 15 MB text part in a child
// process per kind and reports the child's peak resident set size; the
// whole route is measured by test/bench-memory.sh.

var rssKinds = []string{"text/plain", "quoted-printable", "text/html", "text/html quoted-printable", "text/html base64",
	"base64", "iso-8859-1", "flowed", "text/calendar"}

func BenchmarkTextPartRSS(b *testing.B) {
	for _, kind := range rssKinds {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestTextPartRSSChild$")
				cmd.Env = append(os.Environ(), "TOKENPROXY_RSS_CHILD="+kind)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
			}
		})
	}
}

// TestTextPartRSSChild is BenchmarkTextPartRSS's child; it does nothing in
// a normal test run.
func TestTextPartRSSChild(t *testing.T) {
	kind := os.Getenv("TOKENPROXY_RSS_CHILD")
	if kind == "" || kind == "1" {
		t.Skip("run by BenchmarkTextPartRSS")
	}
	rw, _ := newTestRewriter(t, RewriteOptions{})
	if _, err := rw.Inbound(context.Background(), io.Discard, textPartMessage(kind, 15_000_000)); err != nil {
		t.Fatal(err)
	}
}

// textPartMessage streams a message with one text part of about n bytes
// as sent, a customer address every ~2 KB (40 customers), generated as it
// is read: the child's peak is the rewrite's, not the message's.
func textPartMessage(kind string, n int) io.Reader {
	head := "From: support@company.example\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	eol := "\r\n"
	mt, cte, _ := strings.Cut(kind, " ")
	switch mt {
	case "text/html":
		head, eol = strings.Replace(head, "text/plain", "text/html", 1), "<br>\r\n"
	case "quoted-printable", "base64":
		cte = mt
	case "iso-8859-1":
		head, cte = strings.Replace(head, "utf-8", "iso-8859-1", 1), "quoted-printable"
	case "flowed":
		// Paragraphs of soft-broken lines (RFC 3676), quoted-printable.
		head, cte = strings.Replace(head, "utf-8", "utf-8; format=flowed", 1), "quoted-printable"
	case "text/calendar":
		head = strings.Replace(head, "text/plain", "text/calendar", 1)
	}
	if cte != "" {
		head = strings.Replace(head, "8bit", cte, 1)
	}
	// Each group ends with a hard line break, so its quoted-printable form
	// stands alone and the groups can be repeated; in base64, each is a
	// whole number of lines of 57 bytes.
	var groups [][]byte
	for i := 0; i < 40; i++ {
		text := strings.Repeat(prose, 12)
		addr := fmt.Sprintf("customer%d@example.net%s", i, eol)
		switch mt {
		case "iso-8859-1":
			text = strings.ReplaceAll(text, "e", "\xe9")
		case "flowed":
			text = strings.ReplaceAll(text, ". ", ". \r\n") // soft breaks
		case "text/calendar":
			text = fmt.Sprintf("BEGIN:VEVENT\r\nDESCRIPTION:%s\r\nATTENDEE;CN=Customer %d:mailto:", text, i)
			addr = fmt.Sprintf("customer%d@example.net\r\nEND:VEVENT\r\n", i)
			text = foldForRSS(text)
		}
		if cte == "base64" {
			text += strings.Repeat(" ", 57-(len(text)+len(addr))%57)
		}
		g := []byte(text + addr)
		switch cte {
		case "quoted-printable":
			var b bytes.Buffer
			qw := quotedprintable.NewWriter(&b)
			qw.Write(g)
			qw.Close()
			g = b.Bytes()
		case "base64":
			g = wrapBase64(g, "\r\n")
		}
		groups = append(groups, g)
	}
	return io.MultiReader(strings.NewReader(head), &groupReader{groups: groups, left: n})
}

// groupReader repeats its groups, each whole, until at least left bytes
// have been read.
type groupReader struct {
	groups [][]byte
	i, off int
	left   int
}

func (r *groupReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && (r.off > 0 || r.left > 0) {
		g := r.groups[r.i%len(r.groups)]
		c := copy(p[n:], g[r.off:])
		n, r.off, r.left = n+c, r.off+c, r.left-c
		if r.off == len(g) {
			r.i, r.off = r.i+1, 0
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// foldForRSS folds the long lines of text at 75 octets (RFC 5545 section
// 3.1) and leaves its last line, which the address completes, alone.
func foldForRSS(text string) string {
	lines := strings.Split(text, "\r\n")
	for i, l := range lines[:len(lines)-1] {
		var b strings.Builder
		for len(l) > 75 {
			b.WriteString(l[:75] + "\r\n ")
			l = l[75:]
		}
		lines[i] = b.String() + l
	}
	return strings.Join(lines, "\r\n")
}
