package smtp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// A full held-part budget (rewrite.ErrBusy) is a temporary refusal: 452
// 4.3.1, its own metrics result, never the client's data in the text.
func TestBusyReply(t *testing.T) {
	err := fmt.Errorf("in a part: %w", rewrite.ErrBusy)
	code, enh, text, _ := (&session{}).classify(err)
	if code != 452 || enh != [3]int{4, 3, 1} || !strings.Contains(text, "try again later") {
		t.Errorf("reply %d %v %q, want 452 4.3.1", code, enh, text)
	}
	if r := messageResult(err); r != "busy" {
		t.Errorf("result %q, want busy", r)
	}
}

// TestInboundHeldBeyondBudgetRefused: a message that alone would hold more
// than rewrite.limits.max_held_bytes is refused for good (552 5.3.4, a
// limit) and leaves nothing behind: no token, no outbox entry, no
// creation record, nothing downstream.
func TestInboundHeldBeyondBudgetRefused(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) {
		o.createAudit = a
		o.rewrite.Limits = rewrite.Limits{MaxHeldBytes: 300 << 10}
	})
	// A multi-byte charset is held whole to be rewritten.
	held := "From: jane.doe@example.com\r\nTo: support@company.example\r\nSubject: big\r\n" +
		"Content-Type: text/html; charset=euc-kr\r\n\r\n" + strings.Repeat("<p>write to carol@customer.example</p>\r\n", 20000)
	if r := h.send("jane.doe@example.com", held); !strings.HasPrefix(r, "552 5.3.4") {
		t.Fatalf("DATA: %s", r)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("downstream got %d messages", n)
	}
	// A plain-text part of the same size streams, and HTML in UTF-8 is
	// rewritten in pieces: they hold nothing whole.
	for _, ct := range []string{"text/plain", "text/html; charset=utf-8"} {
		msg := strings.Replace(held, "text/html; charset=euc-kr", ct, 1)
		if r := h.send("jane.doe@example.com", msg); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA (%s): %s", ct, r)
		}
	}
}
