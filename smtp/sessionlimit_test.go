package smtp

import (
	"strings"
	"testing"
	"time"
)

// TestSessionTimeLimit: max_session_duration ends a connection that keeps
// sending commands, each within read_timeout, with 421 4.4.2 and a close;
// a DATA transfer under way when the time is up is read to its end and
// relayed first.
func TestSessionTimeLimit(t *testing.T) {
	const limit = time.Second
	const want = "421 4.4.2 mx.test Session time limit exceeded"
	for _, tc := range []struct {
		name string
		tls  bool
		// before runs until the limit passes; it returns how many
		// messages the downstream must have got.
		before func(t *testing.T, c *rawClient, opened time.Time) int
	}{
		{"commands every 300ms", false, noopUntilLimit},
		{"commands every 300ms over STARTTLS", true, noopUntilLimit},
		{"DATA under way when the time is up", false, func(t *testing.T, c *rawClient, opened time.Time) int {
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			c.must("250", "RCPT TO:<support@company.example>")
			c.must("354", "DATA")
			msg := crlf(customerMsg)
			c.write(msg[:len(msg)/2])
			time.Sleep(time.Until(opened.Add(limit + 300*time.Millisecond)))
			c.write(msg[len(msg)/2:] + "\r\n.\r\n")
			if r := c.reply(); !strings.HasPrefix(r, "250") {
				t.Fatalf("DATA finished after the session's time: %q, want 250", r)
			}
			return 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *harnessOpts) { o.limits.MaxSessionDuration = limit })
			opened := time.Now()
			c := h.dial(h.in)
			c.must("250", "EHLO mail.example.com")
			if tc.tls {
				c.startTLS(h, "mx.test")
				c.must("250", "EHLO mail.example.com")
			}
			msgs := tc.before(t, c, opened)
			// Nothing more is sent: the 421 comes unasked, at the end of
			// the session's time, long before read_timeout (5s).
			got := c.reply()
			took := time.Since(opened)
			if got != want {
				t.Fatalf("after %s: %q, want %q", took.Round(time.Millisecond), got, want)
			}
			if took < limit || took > 2*limit+time.Second {
				t.Errorf("421 after %s; want it at the limit, %s", took.Round(time.Millisecond), limit)
			}
			if line, err := c.r.ReadString('\n'); err == nil {
				t.Errorf("connection still open after the 421: read %q", line)
			}
			if n := len(h.ds.Stats().Messages); n != msgs {
				t.Errorf("downstream got %d messages, want %d", n, msgs)
			}
		})
	}
}

// noopUntilLimit keeps the session busy with a NOOP every 300 ms, each
// well within read_timeout, and stops short of the limit so that no
// command crosses the 421 on the wire.
func noopUntilLimit(t *testing.T, c *rawClient, opened time.Time) int {
	for time.Since(opened) < 500*time.Millisecond {
		time.Sleep(300 * time.Millisecond)
		c.must("250", "NOOP")
	}
	return 0
}
