package smtp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// The inbound route stages a message's new tokens and commits them only
// when the message passed (DESIGN.md invariants 3 and 4; issue 18, item 1).

// stored counts the map's tokens, the store's outbox entries (records
// not yet delivered, or delivered and not yet deleted) and the creation
// records the trail got.
func (h *harness) stored(a *storetest.Auditor) (tokens, outbox, records int) {
	h.t.Helper()
	ctx := context.Background()
	err := h.db.View(ctx, func(tx tokenize.ReadTx) error {
		if err := tx.Tokens("", func(string, []byte) (bool, error) { tokens++; return true, nil }); err != nil {
			return err
		}
		var err error
		outbox, err = tx.OutboxLen()
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.m.SyncAudit(ctx); err != nil {
		h.t.Fatal(err)
	}
	return tokens, outbox, len(a.Tokens(tokenize.EventCreated))
}

// send runs one transaction from sender on the inbound route and returns
// the final reply.
func (h *harness) send(sender, msg string) string {
	h.t.Helper()
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.must("250", "MAIL FROM:<%s>", sender)
	c.must("250", "RCPT TO:<support@company.example>")
	r := c.data(msg)
	c.cmd("QUIT")
	return r
}

// toMany is a message whose To: field names n new customers, one per
// folded line.
func toMany(n int) string {
	var b strings.Builder
	b.WriteString("From: jane.doe@example.com\r\nTo: support@company.example")
	for i := range n {
		fmt.Fprintf(&b, ",\r\n c%d@example.net", i)
	}
	b.WriteString("\r\nSubject: hi\r\nMessage-ID: <many@example.com>\r\n\r\nHello.\r\n")
	return b.String()
}

// TestInboundTenThousandToCreatesNothing is the attack of issue 18: one
// header naming 10,000 customers. Refused, it leaves no token, no outbox
// entry and no creation record, and reaches nobody.
func TestInboundTenThousandToCreatesNothing(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) { o.createAudit = a })
	if r := h.send("jane.doe@example.com", toMany(10000)); !strings.HasPrefix(r, "552 5.7.0") {
		t.Fatalf("DATA: %s", r)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("downstream got %d messages", n)
	}
	if !strings.Contains(h.logs.String(), `"event":"new_token_limit"`) || !strings.Contains(h.logs.String(), `"limit":"per_message"`) {
		t.Errorf("no new_token_limit log line:\n%s", h.logs.String())
	}
}

// TestInboundMaxNewTokens: the envelope sender counts; at the limit the
// message passes and its tokens and creation records exist, one over it
// creates none.
func TestInboundMaxNewTokens(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) {
		o.createAudit = a
		o.rewrite.Limits = rewrite.Limits{MaxNewTokens: 4}
	})
	// jane (sender and From) and three recipients: 4 new.
	if r := h.send("jane.doe@example.com", toMany(3)); !strings.HasPrefix(r, "250") {
		t.Fatalf("at the limit: %s", r)
	}
	if tok, _, rec := h.stored(a); tok != 4 || rec != 4 {
		t.Fatalf("%d tokens and %d creation records, want 4", tok, rec)
	}
	// The same four are known now, a new sender makes five.
	if r := h.send("bob.roe@example.org", toMany(3)); !strings.HasPrefix(r, "250") {
		t.Fatalf("four known and one new: %s", r)
	}
	if r := h.send("carol@customer.example", toMany(8)); !strings.HasPrefix(r, "552 5.7.0") {
		t.Fatalf("over the limit: %s", r)
	}
	if tok, _, rec := h.stored(a); tok != 5 || rec != 5 {
		t.Fatalf("%d tokens, %d creation records; want 5", tok, rec)
	}
}

// TestInboundLeakRefusalCreatesNothing: addresses staged, then the leak
// guard refuses the message (an unknown transfer encoding passed
// headers-only): no token.
func TestInboundLeakRefusalCreatesNothing(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) {
		o.createAudit = a
		o.rewrite.Unscannable = rewrite.UnscannableHeadersOnly
	})
	msg := crlf("From: jane.doe@example.com\nTo: support@company.example\nCc: bob.roe@example.org\nContent-Transfer-Encoding: x-klingon\n\nqapla carol@customer.example\n")
	if r := h.send("jane.doe@example.com", msg); !strings.HasPrefix(r, "554 5.6.0") {
		t.Fatalf("DATA: %s", r)
	}
	if tok, ob, rec := h.stored(a); tok != 0 || ob != 0 || rec != 0 {
		t.Fatalf("the refused message left %d tokens, %d outbox entries, %d creation records", tok, ob, rec)
	}
}

// TestInboundResetCreatesNothing: a transaction reset after its sender
// was staged leaves no token.
func TestInboundResetCreatesNothing(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.must("250", "MAIL FROM:<jane.doe@example.com>")
	c.must("250", "RCPT TO:<support@company.example>")
	c.must("250", "RSET")
	c.cmd("QUIT")
	if tok, _, _ := h.stored(&storetest.Auditor{}); tok != 0 {
		t.Fatalf("%d tokens after RSET", tok)
	}
}

// TestInboundNewTokenRate: over the per-client rate, 451 4.7.0 and
// nothing created; known addresses pass; the next minute the client may
// go on.
func TestInboundNewTokenRate(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(60000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) {
		o.createAudit = a
		o.tokenRate = NewTokenRate{PerIP: 3, Total: 1000}
		o.now = clock
	})
	if r := h.send("jane.doe@example.com", toMany(2)); !strings.HasPrefix(r, "250") { // 3 new
		t.Fatalf("within the rate: %s", r)
	}
	if r := h.send("bob.roe@example.org", toMany(2)); !strings.HasPrefix(r, "451 4.7.0") {
		t.Fatalf("over the rate: %s", r)
	}
	if r := h.send("jane.doe@example.com", toMany(2)); !strings.HasPrefix(r, "250") {
		t.Fatalf("known addresses only, over the rate: %s", r)
	}
	if tok, _, rec := h.stored(a); tok != 3 || rec != 3 {
		t.Fatalf("%d tokens, %d creation records; want 3", tok, rec)
	}
	if !strings.Contains(h.logs.String(), `"limit":"per_ip"`) {
		t.Errorf("no per_ip log line")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if r := h.send("bob.roe@example.org", toMany(2)); !strings.HasPrefix(r, "250") {
		t.Fatalf("the next minute: %s", r)
	}
}

// TestInboundNewTokenRateTotal: the total rate holds over all clients.
func TestInboundNewTokenRateTotal(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.tokenRate = NewTokenRate{PerIP: 2, Total: 2} })
	if r := h.send("jane.doe@example.com", toMany(1)); !strings.HasPrefix(r, "250") {
		t.Fatalf("within the rate: %s", r)
	}
	if r := h.send("bob.roe@example.org", toMany(0)); !strings.HasPrefix(r, "451 4.7.0") {
		t.Fatalf("over the total: %s", r)
	}
	if !strings.Contains(h.logs.String(), `"limit":"total"`) {
		t.Errorf("no total log line")
	}
}

// TestInboundConcurrentNewSender: sessions that stage the same new sender
// at once all relay, and it gets one token and one creation record.
func TestInboundConcurrentNewSender(t *testing.T) {
	a := &storetest.Auditor{}
	h := newHarness(t, func(o *harnessOpts) { o.createAudit = a })
	msg := crlf("From: jane.doe@example.com\nTo: support@company.example\nSubject: hi\n\nHello.\n")
	var wg sync.WaitGroup
	replies := make([]string, 8)
	for i := range replies {
		wg.Go(func() { replies[i] = h.send("jane.doe@example.com", msg) })
	}
	wg.Wait()
	for i, r := range replies {
		if !strings.HasPrefix(r, "250") {
			t.Errorf("session %d: %s", i, r)
		}
	}
	if tok, _, rec := h.stored(a); tok != 1 || rec != 1 {
		t.Fatalf("%d tokens, %d creation records; want 1", tok, rec)
	}
	tok := h.token("jane.doe@example.com")
	for i, m := range h.ds.Stats().Messages {
		if !strings.Contains(m, tok) {
			t.Errorf("message %d lacks the committed token", i)
		}
	}
}
