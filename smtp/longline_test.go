package smtp

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestLongLineOneReply (issue 18 item 6): a message line longer than
// smtp.max_line_length gets exactly one reply, 500 5.5.2, after the data
// was drained, by DATA and BDAT alike; the session stays in step (the next
// command gets its own reply) and nothing is relayed. Before, DATA got
// 451 4.3.0 and then a second reply, 500 5.4.0, and the connection closed.
func TestLongLineOneReply(t *testing.T) {
	h := newHarness(t, nil)
	long := "Subject: a\r\n\r\n" + strings.Repeat("x", 3*testLimits().MaxLineLength) + "\r\nMAIL FROM:<e@example.net>\r\n"
	start := func() *rawClient {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		c.must("250", "MAIL FROM:<jane.doe@example.com>")
		c.must("250", "RCPT TO:<support@company.example>")
		return c
	}
	inStep := func(c *rawClient) {
		c.must("250 2.0.0", "NOOP")
		// No second reply is waiting: the QUIT's 221 comes next.
		c.must("221", "QUIT")
	}
	t.Run("DATA", func(t *testing.T) {
		c := start()
		if r := c.data(long); !strings.HasPrefix(r, "500 5.5.2 ") {
			t.Fatalf("DATA: %s", r)
		}
		inStep(c)
	})
	t.Run("BDAT", func(t *testing.T) {
		c := start()
		c.write("BDAT " + strconv.Itoa(len(long)) + " LAST\r\n" + long)
		if r := c.reply(); !strings.HasPrefix(r, "500 5.5.2 ") {
			t.Fatalf("BDAT: %s", r)
		}
		inStep(c)
	})
	t.Run("DATA at the limit", func(t *testing.T) {
		c := start()
		line := strings.Repeat("y", testLimits().MaxLineLength-2) // + CRLF: exactly the limit
		if r := c.data("Subject: a\r\n\r\n" + line); !strings.HasPrefix(r, "250") {
			t.Fatalf("a line at the limit: %s", r)
		}
		inStep(c)
	})
	time.Sleep(50 * time.Millisecond) // the relayed message's statistics
	if n := len(h.ds.Stats().Messages); n != 1 {
		t.Fatalf("relayed %d messages, want only the one at the limit", n)
	}
}

// TestStrictDataMaxLine: the limit counts CRLF, holds across reads (one
// byte at a time here) and is reported only after the data was drained.
func TestStrictDataMaxLine(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		ok         bool
	}{
		{"at the limit", "12345678\r\nabc\r\n", true},
		{"one over", "123456789\r\nabc\r\n", false},
		{"last line over, no CRLF", "ab\r\n12345678901", false},
		{"many short lines", strings.Repeat("1234567\r\n", 100), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.NewReader(tc.data)
			_, err := io.ReadAll(NewStrictDataMaxLine(iotest.OneByteReader(src), 10))
			if tc.ok != (err == nil) || !tc.ok && err != ErrLineTooLong {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if src.Len() != 0 {
				t.Fatalf("%d bytes not drained", src.Len())
			}
		})
	}
}
