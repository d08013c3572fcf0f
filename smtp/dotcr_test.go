package smtp

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// TestDotCRAndNULRefused (issue 18 item 9): the strict check sees what the
// client sent, for DATA as for BDAT. A line starting "." and a bare CR
// (go-smtp used to drop both, third_party/go-smtp/PATCHES.md 2) and a NUL
// get one reply, 500 5.5.2, after the data was drained; the session stays
// in step, nothing reaches the downstream and no token is created. A clean
// message with a dot at the start of a line then reaches the downstream
// with its bytes as sent (DATA minus the stuffing dot).
func TestDotCRAndNULRefused(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) { o.createAudit = a })
	const head = "From: jane.doe@example.com\r\nTo: support@company.example\r\nSubject: a\r\n\r\n"
	bad := []struct{ name, msg string }{
		{"dot cr text", head + "hello\r\n.\rMAIL FROM:<e@example.net>\r\nbye"},
		{"dot cr cr lf", head + "hello\r\n.\r\r\nbye"},
		{"dot cr first body line", head + ".\rhello"},
		{"nul in a header", "From: jane.doe@example.com\r\nTo: support@company.example\r\nSubject: a\x00b\r\n\r\nhello"},
		{"nul in the body", head + "hel\x00lo"},
		{"nul after a dot", head + "hello\r\n.\x00bye"},
	}
	start := func() *rawClient {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		c.must("250", "MAIL FROM:<jane.doe@example.com>")
		c.must("250", "RCPT TO:<support@company.example>")
		return c
	}
	inStep := func(t *testing.T, c *rawClient) {
		t.Helper()
		c.must("250 2.0.0", "NOOP")
		c.must("221", "QUIT") // no second reply was waiting
	}
	for _, tc := range bad {
		t.Run(tc.name+"/DATA", func(t *testing.T) {
			c := start()
			if r := c.data(tc.msg); !strings.HasPrefix(r, "500 5.5.2 ") {
				t.Fatalf("DATA: %s", r)
			}
			inStep(t, c)
		})
		t.Run(tc.name+"/BDAT", func(t *testing.T) {
			c := start()
			// BDAT has no dot stuffing: the same bytes as on the DATA wire.
			c.write("BDAT " + strconv.Itoa(len(tc.msg)) + " LAST\r\n" + tc.msg)
			if r := c.reply(); !strings.HasPrefix(r, "500 5.5.2 ") {
				t.Fatalf("BDAT: %s", r)
			}
			inStep(t, c)
		})
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("refused messages left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("the downstream got %d refused messages", n)
	}

	// The control: dots at line starts, passed as sent.
	c := start()
	if r := c.data(head + "..dot stuffed\r\n.x\r\nend"); !strings.HasPrefix(r, "250") {
		t.Fatalf("clean DATA: %s", r)
	}
	inStep(t, c)
	c = start()
	body := head + ".dot\r\n.\r\nend\r\n"
	c.write("BDAT " + strconv.Itoa(len(body)) + " LAST\r\n" + body)
	if r := c.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("clean BDAT: %s", r)
	}
	inStep(t, c)
	var msgs []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if msgs = h.ds.Stats().Messages; len(msgs) == 2 {
			break
		}
	}
	if len(msgs) != 2 {
		t.Fatalf("the downstream got %d messages, want the 2 clean ones", len(msgs))
	}
	for i, want := range []string{"\r\n\r\n.dot stuffed\r\nx\r\nend\r\n", "\r\n\r\n.dot\r\n.\r\nend\r\n"} {
		if !strings.HasSuffix(msgs[i], want) {
			t.Errorf("message %d ends %q, want %q", i, tail([]byte(msgs[i])), want)
		}
	}
}
