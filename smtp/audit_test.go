package smtp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenproxy/tokenproxy/audit"
)

// failingAuditor fails every Append while fail is set, and records what it
// was given otherwise.
type failingAuditor struct {
	mu   sync.Mutex
	fail bool
	recs []audit.Record
}

func (a *failingAuditor) Append(_ context.Context, recs ...audit.Record) ([]audit.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return nil, errors.New("disk full")
	}
	a.recs = append(a.recs, recs...)
	return recs, nil
}

// TestOutboundMessageAudited: one token.resolved record per message, with
// the envelope and content tokens and the hashed Message-ID, written to a
// real audit trail that verifies, and holding no address.
func TestOutboundMessageAudited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	trail, err := audit.Open(context.Background(), audit.Options{Path: path, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close(context.Background())
	h := newHarness(t, func(o *harnessOpts) { o.audit = trail })
	jane := h.token("jane.doe@example.com")
	bob := h.token("bob.roe@example.org")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", jane)
	msg := crlf("From: support@crm.example\nTo: " + jane + "\nCc: " + bob + "\nMessage-ID: <r1@crm.example>\nSubject: Re\n\nhello\n")
	if r := c.data(msg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	var got []audit.Record
	err = audit.Select(openFile(t, path), audit.Query{Events: []string{audit.TokenResolved}}, func(r audit.Record) error {
		got = append(got, r)
		return nil
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("token.resolved records: %v, %v", got, err)
	}
	r := got[0]
	if r.MessageID != hashMessageID([]byte(" <r1@crm.example>")) {
		t.Errorf("msgid_hash = %s, not the hash of the message's Message-ID", r.MessageID)
	}
	if r.Route != RouteOutbound || !strings.HasPrefix(r.Actor, "route:outbound") || r.MessageID == "" ||
		len(r.Tokens) != 2 || !strings.EqualFold(r.Tokens[0], jane) || !strings.EqualFold(r.Tokens[1], bob) {
		t.Fatalf("record = %+v", r)
	}
	if rep, err := audit.Verify(openFile(t, path), nil, nil); err != nil || !rep.OK() {
		t.Fatalf("trail does not verify: %+v %v", rep, err)
	}
	for _, c := range testCustomers {
		if strings.Contains(readFile(t, path), c) {
			t.Fatalf("the trail holds %s", c)
		}
	}
}

// TestOutboundAuditFailure: a message whose record cannot be written gets
// 451 4.3.0 and nothing reaches the downstream.
func TestOutboundAuditFailure(t *testing.T) {
	a := &failingAuditor{fail: true}
	h := newHarness(t, func(o *harnessOpts) { o.audit = a })
	jane := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", jane)
	if r := c.data(crlf("From: support@crm.example\nTo: " + jane + "\nSubject: Re\n\nhello\n")); !strings.HasPrefix(r, "451 4.3.0") {
		t.Fatalf("DATA with the audit trail failing: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages although the audit failed", n)
	}
	a.mu.Lock()
	a.fail = false
	a.mu.Unlock()
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", jane)
	if r := c.data(crlf("From: support@crm.example\nTo: " + jane + "\nSubject: Re\n\nhello\n")); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA after the trail recovered: %s", r)
	}
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(string(b))
}

// TestInboundErasedSenderSuppressed: under compliance.after_erasure
// refuse, an erased customer's new message gets 550 5.7.1, with a text
// that names no address, and nothing is relayed; without it, a new token.
func TestInboundErasedSenderSuppressed(t *testing.T) {
	for _, suppress := range []bool{false, true} {
		t.Run(fmt.Sprint("suppress=", suppress), func(t *testing.T) {
			h := newHarness(t, func(o *harnessOpts) { o.suppressErased = suppress })
			old := h.token("jane.doe@example.com")
			if _, err := h.m.EraseSubject(context.Background(), "jane.doe@example.com"); err != nil {
				t.Fatal(err)
			}
			c := h.dial(h.in)
			c.must("250", "EHLO mail.example.com")
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			if !suppress {
				c.must("250", "RCPT TO:<support@company.example>")
				if r := c.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
					t.Fatalf("DATA: %s", r)
				}
				if got := h.ds.Stats().Messages[0]; strings.Contains(strings.ToLower(got), strings.ToLower(old)) {
					t.Fatal("the erased token was reissued")
				}
				return
			}
			r := c.cmd("RCPT TO:<support@company.example>")
			if !strings.HasPrefix(r, "550 5.7.1") || !strings.Contains(r, "erased") || strings.Contains(r, "jane") {
				t.Fatalf("RCPT from a suppressed address: %s", r)
			}
			if n := len(h.ds.Stats().Messages); n != 0 {
				t.Fatalf("relayed %d", n)
			}
		})
	}
}
