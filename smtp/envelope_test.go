package smtp

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TestOutboundRoutedRecipientsRefused: a recipient in an allowed domain
// whose local part routes onward ('%', '!') is refused 553 5.7.1, after
// normalization (a quoted local part too); a source route is dropped by
// go-smtp and its final mailbox judged alone; tokens and plain recipients
// still pass, and nothing is relayed for the refused ones.
func TestOutboundRoutedRecipientsRefused(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	for _, rcpt := range []string{
		"victim%gmail.example@company.example",
		"victim!gmail.example@company.example",
		"gmail.example!victim@company.example",
		`"victim%gmail.example"@company.example`,
		"VICTIM%GMAIL.EXAMPLE@Company.Example",
		"@relay.example,@company.example:victim%gmail.example@company.example",
	} {
		if r := c.cmd("RCPT TO:<%s>", rcpt); !strings.HasPrefix(r, "553 5.7.1") {
			t.Errorf("RCPT %s: %s", rcpt, r)
		} else if strings.Contains(strings.ToLower(r), "victim") {
			t.Errorf("reply names the address: %s", r)
		}
	}
	// go-smtp drops a source route (RFC 5321 §3.6.1); the final mailbox
	// is judged alone, so a route cannot lead off the allowed domains.
	c.must("550 5.7.1", "RCPT TO:<@company.example:victim@gmail.example>")
	c.must("250", "RCPT TO:<%s>", tok)
	c.must("250", "RCPT TO:<boss@company.example>")
	if r := c.data(crlf("From: support@crm.example\nTo: " + tok + "\nSubject: hi\n\nhello\n")); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	msgs := h.ds.Stats().Messages
	if len(msgs) != 1 {
		t.Fatalf("downstream got %d messages", len(msgs))
	}
	if strings.Contains(strings.ToLower(msgs[0]), "victim") {
		t.Errorf("a routed recipient reached the downstream:\n%s", msgs[0])
	}
}

// TestInboundRelayDomainSenderRefused: an existing token (or any address
// in the relay domain) as envelope sender is refused 550 5.7.1 at MAIL
// unless the client is a trusted relay (TestInboundRelayDomainSenderTrusted);
// nothing reaches the CRM and no token is created.
func TestInboundRelayDomainSenderRefused(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("jane.doe@example.com")
	domain := tok[strings.LastIndexByte(tok, '@')+1:]
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	for _, from := range []string{tok, strings.ToUpper(tok), "t1-aaaaaaaaaaaaaaaa@" + domain, "postmaster@" + strings.ToUpper(domain)} {
		if r := c.cmd("MAIL FROM:<%s>", from); !strings.HasPrefix(r, "550 5.7.1") {
			t.Errorf("MAIL FROM %s: %s", from, r)
		}
	}
	c.cmd("RCPT TO:<support@company.example>")
	c.cmd("DATA")
	n := 0
	h.m.Each(context.Background(), func(tokenize.Entry) error { n++; return nil })
	if n != 1 || h.ds.Stats().Sessions != 0 || len(h.ds.Stats().Messages) != 0 {
		t.Fatalf("refused sender: %d tokens (want 1), %d downstream sessions", n, h.ds.Stats().Sessions)
	}
	c.must("250", "MAIL FROM:<Jane.Doe@Example.com>") // the customer herself still passes
}
