package rewrite

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func htmlPart(n int) string {
	return "Content-Type: text/html; charset=utf-8\r\n\r\n<p>" +
		strings.Repeat("write to <b>jane@example.net</b> or the desk.<br>\r\n", n/50) + "</p>\r\n"
}

// multiBytePart is text held whole: a multi-byte charset (EUC-KR) is not
// read in pieces.
func multiBytePart(n int) string {
	return "Content-Type: text/plain; charset=euc-kr\r\n\r\n" +
		strings.Repeat("write to jane@example.net or the \r\ndesk.\r\n", n/45)
}

// heldMessages are messages that hold parts whole, and ones that stream.
func heldMessages(t testing.TB) map[string]string {
	inner := "From: jane@example.net\r\n" + multiBytePart(600<<10)
	var nb strings.Builder // text that deflates about 5 times, within the ratio limit
	for i := 0; nb.Len() < 2<<20; i++ {
		fmt.Fprintf(&nb, "order %d shipped %x, write to jane@example.net\r\n", i*7919%1000003, i*104729)
	}
	notes := nb.String()
	pdfText := "%PDF-1.4\n1 0 obj\n(" + strings.Repeat("the order ships today ", 600<<10/22) + ")\nendobj\ntrailer\n<<>>\n%%EOF\n"
	var z bytes.Buffer // a content stream deflating 2 MB of text to a few kilobytes
	zw := zlib.NewWriter(&z)
	for i := 0; i < 2<<20/40; i++ {
		fmt.Fprintf(zw, "BT (order %d shipped %x) Tj ET\n", i*7919%1000003, i*104729)
	}
	zw.Close()
	flatePDF := fmt.Sprintf("%%PDF-1.4\n1 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\ntrailer\n<<>>\n%%%%EOF\n",
		z.Len(), z.Bytes())
	return map[string]string{
		"zip expanding to 2 MB":  string(withAttachment("application/zip", "notes.zip", zipOf(t, "notes.txt", notes))),
		"pdf 600 KB":             string(withAttachment("application/pdf", "order.pdf", []byte(pdfText))),
		"pdf decoding to 2 MB":   string(withAttachment("application/pdf", "order.pdf", []byte(flatePDF))),
		"euc-kr 600 KB":          "From: support@company.example\r\n" + multiBytePart(600<<10),
		"euc-kr 100 KB":          "From: support@company.example\r\n" + multiBytePart(100<<10),
		"html 600 KB (streamed)": "From: support@company.example\r\n" + htmlPart(600<<10),
		"plain 2 MB (streamed)": "From: support@company.example\r\nContent-Type: text/plain\r\n\r\n" +
			strings.Repeat("write to jane@example.net or the desk.\r\n", 2<<20/40),
		"encoded message holding euc-kr 600 KB": "From: support@company.example\r\nContent-Type: message/rfc822\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(inner)) + "\r\n",
	}
}

// TestHeldBudget: parts held whole are counted against the Rewriter's
// budget. When other messages took it all, a message that must hold a
// part over heldFreeBytes gets ErrBusy (temporary), a message that alone
// needs more than the budget gets ErrLimit (it could never pass), and
// what holds less or streams passes; every reservation is given back.
func TestHeldBudget(t *testing.T) {
	tests := []struct {
		msg          string
		budget       int64
		othersHold   bool
		want         error
		wantReserved bool
	}{
		{"euc-kr 600 KB", 64 << 20, false, nil, true},
		{"euc-kr 600 KB", 64 << 20, true, ErrBusy, false},
		{"euc-kr 600 KB", 100 << 10, false, ErrLimit, false},
		{"euc-kr 100 KB", 64 << 20, true, nil, false},
		{"plain 2 MB (streamed)", 64 << 20, true, nil, false},
		{"html 600 KB (streamed)", 64 << 20, true, nil, false},
		{"encoded message holding euc-kr 600 KB", 64 << 20, false, nil, true},
		{"encoded message holding euc-kr 600 KB", 64 << 20, true, ErrBusy, false},
		{"encoded message holding euc-kr 600 KB", 700 << 10, false, ErrLimit, false},
		// An opened attachment counts its raw and decoded bytes and its
		// expansion; a PDF its raw and decoded bytes.
		{"zip expanding to 2 MB", 64 << 20, false, nil, true},
		{"zip expanding to 2 MB", 64 << 20, true, ErrBusy, false},
		{"zip expanding to 2 MB", 1 << 20, false, ErrLimit, false},
		{"pdf 600 KB", 64 << 20, false, nil, true},
		{"pdf 600 KB", 64 << 20, true, ErrBusy, false},
		{"pdf 600 KB", 1 << 20, false, ErrLimit, false},
		{"pdf decoding to 2 MB", 64 << 20, false, nil, true},
		{"pdf decoding to 2 MB", 64 << 20, true, ErrBusy, false},
		{"pdf decoding to 2 MB", 1 << 20, false, ErrLimit, false},
	}
	msgs := heldMessages(t)
	for _, tt := range tests {
		rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxHeldBytes: tt.budget}})
		var others int64
		if tt.othersHold {
			others = tt.budget
			rw.held.used.Store(others)
		}
		var peak int64
		watch := writerFunc(func(p []byte) (int, error) {
			peak = max(peak, rw.held.used.Load())
			return len(p), nil
		})
		_, err := rw.Inbound(context.Background(), watch, strings.NewReader(msgs[tt.msg]))
		switch {
		case tt.want == nil && err != nil, tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s, budget %d, others holding %v: err = %v, want %v", tt.msg, tt.budget, tt.othersHold, err, tt.want)
		case tt.want == ErrBusy && errors.Is(err, ErrLimit), tt.want == ErrLimit && errors.Is(err, ErrBusy):
			t.Errorf("%s: err = %v, want only %v", tt.msg, err, tt.want)
		}
		if got := rw.held.used.Load(); got != others {
			t.Errorf("%s: %d bytes still reserved after the message, want %d", tt.msg, got-others, 0)
		}
		if tt.wantReserved && peak <= others {
			t.Errorf("%s: nothing was reserved while it was written", tt.msg)
		}
	}
}

// TestHeldBudgetGuardNotCounted: the guard's walks hold their copy outside
// the budget, so a message that fits the budget passes its guard too.
func TestHeldBudgetGuardNotCounted(t *testing.T) {
	msg := heldMessages(t)["euc-kr 600 KB"]
	rw, _ := newTestRewriter(t, RewriteOptions{Limits: Limits{MaxHeldBytes: 400 << 10}})
	var out bytes.Buffer
	if _, err := rw.Inbound(context.Background(), &out, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if err := rw.Guard(context.Background(), bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)
