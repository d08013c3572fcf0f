package smtp

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// TestInboundRelaysTokenized: envelope, headers and body reach the CRM
// with tokens; threading headers stay byte-identical.
func TestInboundRelaysTokenized(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.startTLS(h, "mx.test")
	ehlo := c.must("250", "EHLO mail.example.com")
	for _, ext := range []string{"SMTPUTF8", "8BITMIME", "SIZE 1048576", "PIPELINING"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	for _, ext := range []string{"REQUIRETLS", "BINARYMIME", "AUTH"} {
		if strings.Contains(ehlo, ext) {
			t.Errorf("EHLO offers %s:\n%s", ext, ehlo)
		}
	}
	c.must("502 5.5.1", "AUTH PLAIN AGNybQBzM2NyZXQ=") // no AUTH on the inbound route
	c.must("250", "MAIL FROM:<Jane.Doe@Example.com>")
	c.must("250", "RCPT TO:<support@company.example>")
	if r := c.data(crlf(customerMsg)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	msgs := h.ds.Stats().Messages
	if len(msgs) != 1 {
		t.Fatalf("downstream got %d messages", len(msgs))
	}
	got := msgs[0]
	for _, cust := range testCustomers {
		if strings.Contains(strings.ToLower(got), cust) {
			t.Errorf("CRM received %s:\n%s", cust, got)
		}
	}
	for _, keep := range []string{"Message-ID: <abc.123@mail.example.com>\r\n", "In-Reply-To: <prev.1@crm.example>\r\n",
		"References: <root.0@crm.example> <prev.1@crm.example>\r\n", "To: Support <support@company.example>\r\n",
		h.token("jane.doe@example.com"), h.token("carol@customer.example"), "Received: from mail.example.com ([127.0.0.1])"} {
		if !strings.Contains(got, keep) {
			t.Errorf("CRM message lacks %q:\n%s", keep, got)
		}
	}
}

// TestInboundNeverOpenRelay: only configured mailboxes are accepted, and a
// refused attempt creates no token and no downstream connection.
func TestInboundNeverOpenRelay(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO spam.example")
	c.must("250", "MAIL FROM:<spammer@example.net>")
	for _, rcpt := range []string{"victim@example.org", "other@company.example", "support@crm.example",
		"support@company.example@evil.example", "\"support@company.example\"@evil.example", "support%evil.example@company.example",
		"t1-aaaaaaaaaaaaaaaa@relay.company.example"} {
		if r := c.cmd("RCPT TO:<%s>", rcpt); !strings.HasPrefix(r, "550 5.7.1") && !strings.HasPrefix(r, "501") {
			t.Errorf("RCPT %s: %s", rcpt, r)
		}
	}
	n := 0
	h.m.Each(context.Background(), func(tokenize.Entry) error { n++; return nil })
	if n != 0 || h.ds.Stats().Sessions != 0 {
		t.Fatalf("refused relay attempt: %d tokens, %d downstream sessions", n, h.ds.Stats().Sessions)
	}
}

// TestOutboundRequiresTLSAndAuth: MAIL and AUTH before STARTTLS get 530;
// AUTH is not even advertised; a client outside the networks needs AUTH.
func TestOutboundRequiresTLSAndAuth(t *testing.T) {
	hash, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *harnessOpts) {
		o.users = map[string]string{"crm": hash}
		o.networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	c := h.dial(h.out)
	if ehlo := c.must("250", "EHLO crm.example"); strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO before TLS:\n%s", ehlo)
	}
	c.must("530 5.7.0", "MAIL FROM:<support@crm.example>")
	c.must("530 5.7.0", "AUTH PLAIN AGNybQBzM2NyZXQ=")
	c.startTLS(h, "relay.test")
	if ehlo := c.must("250", "EHLO crm.example"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO after TLS:\n%s", ehlo)
	}
	c.must("530 5.7.0", "MAIL FROM:<support@crm.example>")
	c.must("535 5.7.8", "AUTH PLAIN AGNybQB3cm9uZw==")     // crm / wrong
	c.must("535 5.7.8", "AUTH PLAIN AGJvZ3VzAHMzY3JldA==") // unknown user
	c.must("504 5.5.4", "AUTH CRAM-MD5")
	c.must("235", "AUTH PLAIN AGNybQBzM2NyZXQ=") // crm / s3cret
	c.must("250", "MAIL FROM:<support@crm.example>")

	// LOGIN, the mechanism many CRM connectors use.
	c2 := h.dial(h.out)
	c2.must("250", "EHLO crm.example")
	c2.startTLS(h, "relay.test")
	c2.must("250", "EHLO crm.example")
	c2.must("334 VXNlcm5hbWU6", "AUTH LOGIN")
	c2.must("334 UGFzc3dvcmQ6", "Y3Jt")
	c2.must("235", "czNjcmV0")
}

// TestOutboundAuthBruteForceCloses: three failures end the connection.
func TestOutboundAuthBruteForceCloses(t *testing.T) {
	hash, _ := HashPassword("s3cret")
	h := newHarness(t, func(o *harnessOpts) { o.users = map[string]string{"crm": hash} })
	c := h.dial(h.out)
	c.must("250", "EHLO crm.example")
	c.startTLS(h, "relay.test")
	c.must("250", "EHLO crm.example")
	for i := 0; i < maxAuthFailures; i++ {
		c.must("535", "AUTH PLAIN AGNybQB3cm9uZw==")
	}
	time.Sleep(400 * time.Millisecond)
	_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.conn.Write([]byte("NOOP\r\n")); err == nil {
		if line, err := c.r.ReadString('\n'); err == nil {
			t.Fatalf("connection still open after %d failures: %q", maxAuthFailures, line)
		}
	}
}

// outboundSession returns a client of the outbound route after STARTTLS,
// from an allowed network.
func outboundSession(h *harness) *rawClient {
	c := h.dial(h.out)
	c.must("250", "EHLO crm.example")
	c.startTLS(h, "relay.test")
	c.must("250", "EHLO crm.example")
	return c
}

// TestOutboundRecipients: tokens resolve, unknown and erased tokens get
// 550 5.1.1, non-tokens pass only in allowed domains.
func TestOutboundRecipients(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("jane.doe@example.com")
	erased := h.token("bob.roe@example.org")
	if err := h.m.Erase(context.Background(), erased); err != nil {
		t.Fatal(err)
	}
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", strings.ToUpper(tok)) // CRMs re-case addresses
	c.must("550 5.1.1", "RCPT TO:<%s>", erased)
	c.must("550 5.1.1", "RCPT TO:<t1-aaaaaaaaaaaaaaaa@relay.company.example>")
	c.must("550 5.7.1", "RCPT TO:<someone@example.net>")
	c.must("250", "RCPT TO:<boss@company.example>")
	reply := crlf("From: Support <support@crm.example>\nReply-To: support@crm.example\nTo: " + tok +
		"\nSubject: Re: order\nIn-Reply-To: <abc.123@mail.example.com>\n\n> earlier, " + tok + " wrote\n")
	if r := c.data(reply); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	got := h.ds.Stats().Messages[0]
	for _, want := range []string{"To: jane.doe@example.com\r\n", "> earlier, jane.doe@example.com wrote",
		"From: Support <support@company.example>\r\n", "Reply-To: support@company.example\r\n",
		"In-Reply-To: <abc.123@mail.example.com>\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("customer message lacks %q:\n%s", want, got)
		}
	}
}

// TestOutboundUnknownTokenInBody: a message naming an erased token is
// refused whole and nothing is relayed.
func TestOutboundUnknownTokenInBody(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", tok)
	r := c.data(crlf("To: " + tok + "\nSubject: x\n\ncc t1-aaaaaaaaaaaaaaaa@relay.company.example\n"))
	if !strings.HasPrefix(r, "550 5.1.1") || !strings.Contains(r, "(session ") {
		t.Fatalf("DATA: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d messages", n)
	}
}

// TestOutboundRewriteFrom: rewrite_from replaces From and the envelope
// sender; the display name stays.
func TestOutboundRewriteFrom(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.fromRW = "help@company.example" })
	tok := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<bounces+x@crm.example>")
	c.must("250", "RCPT TO:<%s>", tok)
	if r := c.data(crlf("From: \"Acme Help\" <agent7@crm.example>\nTo: " + tok + "\n\nhi\n")); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
	if got := h.ds.Stats().Messages[0]; !strings.Contains(got, "From: \"Acme Help\" <help@company.example>\r\n") {
		t.Fatalf("From not rewritten:\n%s", got)
	}
}

// TestDownstreamFailuresReachClient: 4xx, 5xx, stall and drop mid-DATA
// give the client 451 or 5xx, and the downstream keeps no message.
func TestDownstreamFailuresReachClient(t *testing.T) {
	tests := []struct {
		name  string
		ds    func(b *downstreamtest.Sink)
		reply string
	}{
		{"4xx at DATA", func(b *downstreamtest.Sink) {
			b.DataErr = &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 3, 1}, Message: "full <x@y>"}
		}, "451 4.4.0"},
		{"5xx at DATA", func(b *downstreamtest.Sink) {
			b.DataErr = &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "spam <x@y>"}
		}, "554 5.7.1 Refused by the next hop"},
		{"5xx at MAIL", func(b *downstreamtest.Sink) {
			b.MailErr = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "no"}
		}, "550 5.7.1 Refused by the next hop"},
		{"stall after data", func(b *downstreamtest.Sink) { b.DataSleep = 5 * time.Second }, "451 4.4.1"},
		{"drop mid-DATA", func(b *downstreamtest.Sink) { b.DropInData = true }, "451 4.4.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &downstreamtest.Sink{}
			tt.ds(ds)
			h := newHarness(t, func(o *harnessOpts) { o.ds = ds })
			c := h.dial(h.in)
			c.must("250", "EHLO mail.example.com")
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			r := c.cmd("RCPT TO:<support@company.example>")
			if strings.HasPrefix(r, "250") {
				r = c.data(crlf(customerMsg))
			}
			if !strings.HasPrefix(r, tt.reply) || strings.Contains(r, "x@y") || !strings.Contains(r, "(session ") {
				t.Fatalf("reply %q, want %s… with a session and no downstream text", r, tt.reply)
			}
			if n := len(h.ds.Stats().Messages); n != 0 && tt.ds != nil && ds.DataSleep == 0 {
				t.Fatalf("downstream kept %d messages", n)
			}
			// The session goes on: a new transaction is possible.
			c.must("250", "RSET")
		})
	}
}

// TestClientAbortLeavesNoPartial: a client that disconnects before its
// final dot leaves nothing at the downstream: our dot is never sent.
func TestClientAbortLeavesNoPartial(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.must("250", "MAIL FROM:<jane.doe@example.com>")
	c.must("250", "RCPT TO:<support@company.example>")
	c.must("354", "DATA")
	c.write(crlf(customerMsg))
	c.conn.Close() // the client goes away before the final dot
	time.Sleep(300 * time.Millisecond)
	st := h.ds.Stats()
	if len(st.Messages) != 0 {
		t.Fatalf("downstream accepted a partial message:\n%s", st.Messages[0])
	}
}

// TestMultiRecipientOneRefused: the downstream refuses one recipient; the
// client sees that RCPT refused, and the message goes to the others.
func TestMultiRecipientOneRefused(t *testing.T) {
	ds := &downstreamtest.Sink{RcptErr: map[string]error{"boss@company.example": &gosmtp.SMTPError{Code: 550,
		EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user boss@company.example"}}}
	h := newHarness(t, func(o *harnessOpts) { o.ds = ds })
	a, b := h.token("jane.doe@example.com"), h.token("bob.roe@example.org")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", a)
	if r := c.cmd("RCPT TO:<boss@company.example>"); !strings.HasPrefix(r, "550 5.1.1 Refused by the next hop") {
		t.Fatalf("refused recipient: %s", r)
	}
	c.must("250", "RCPT TO:<%s>", b)
	if r := c.data(crlf("To: " + a + ", " + b + "\n\nhi\n")); !strings.HasPrefix(r, "250") {
		t.Fatal(r)
	}
	if n := len(h.ds.Stats().Messages); n != 1 {
		t.Fatalf("%d messages relayed", n)
	}
}

// TestSmugglingRefused: bare CR or LF in DATA and BDAT get 500 5.5.2 after
// the whole data was read, so the session stays in step and nothing is
// relayed (CVE-2023-51764 family).
func TestSmugglingRefused(t *testing.T) {
	variants := map[string]string{
		"bare LF dot LF":   "Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@example.net>\r\n",
		"bare LF":          "Subject: a\r\n\r\nline\nline\r\n",
		"bare CR":          "Subject: a\r\n\r\nline\rline\r\n",
		"CR dot CR LF":     "Subject: a\r\n\r\nx\r.\r\nRCPT TO:<x@example.net>\r\n",
		"LF dot CR LF":     "Subject: a\r\n\r\nx\n.\r\nDATA\r\n",
		"CR LF dot LF":     "Subject: a\r\n\r\nx\r\n.\nQUIT\r\n",
		"bare LF trailing": "Subject: a\r\n\r\nok\r\nlast\n",
	}
	h := newHarness(t, nil)
	for name, body := range variants {
		t.Run(name, func(t *testing.T) {
			c := h.dial(h.in)
			c.must("250", "EHLO mail.example.com")
			c.must("250", "MAIL FROM:<jane.doe@example.com>")
			c.must("250", "RCPT TO:<support@company.example>")
			if r := c.data(body); !strings.HasPrefix(r, "500 5.5.2") {
				t.Fatalf("DATA: %s", r)
			}
			c.must("250", "NOOP") // in step: no smuggled command was run
		})
	}
	t.Run("BDAT", func(t *testing.T) {
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		c.must("250", "MAIL FROM:<jane.doe@example.com>")
		c.must("250", "RCPT TO:<support@company.example>")
		chunk := "Subject: a\r\n\r\nx\n.\nMAIL FROM:<e@example.net>\r\n"
		c.write("BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk)
		if r := c.reply(); !strings.HasPrefix(r, "500 5.5.2") {
			t.Fatalf("BDAT: %s", r)
		}
		c.must("250", "NOOP")
	})
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d smuggling messages", n)
	}
}

// TestStartTLSPipelineDiscarded: commands pipelined behind STARTTLS in
// the clear are never run inside the TLS session (RFC 3207 §4.2;
// CVE-2011-0411 family).
func TestStartTLSPipelineDiscarded(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(h.out)
	c.must("250", "EHLO crm.example")
	c.write("STARTTLS\r\nMAIL FROM:<support@crm.example>\r\n")
	c.expect("220")
	c.conn, c.r = tlsClient(t, h, c, "relay.test")
	c.must("250", "EHLO crm.example")
	// Had the MAIL run, this would be 503 (nested MAIL); it is accepted.
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RSET")
}

// TestLimits: oversize messages get 552, too many recipients 452.
func TestLimits(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.limits.MaxMessageBytes = 2000; o.limits.MaxRecipients = 2 })
	a := h.token("jane.doe@example.com")
	c := outboundSession(h)
	c.must("250", "MAIL FROM:<support@crm.example>")
	c.must("250", "RCPT TO:<%s>", a)
	c.must("250", "RCPT TO:<boss@company.example>")
	c.must("452", "RCPT TO:<boss2@company.example>")
	if r := c.data(crlf("To: " + a + "\n\n" + strings.Repeat("0123456789\n", 400))); !strings.HasPrefix(r, "552") {
		t.Fatalf("oversize DATA: %s", r)
	}
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d", n)
	}
}

// TestUnscannableRefused: an encrypted part cannot be checked for
// addresses: 554 5.6.0, or 451 4.6.0 by policy.
func TestUnscannableRefused(t *testing.T) {
	msg := crlf("From: jane.doe@example.com\nMIME-Version: 1.0\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\n")
	for _, code := range []int{554, 451} {
		h := newHarness(t, func(o *harnessOpts) { o.limits.RefusalCode = code })
		c := h.dial(h.in)
		c.must("250", "EHLO mail.example.com")
		c.must("250", "MAIL FROM:<jane.doe@example.com>")
		c.must("250", "RCPT TO:<support@company.example>")
		want := map[int]string{554: "554 5.6.0", 451: "451 4.6.0"}[code]
		if r := c.data(msg); !strings.HasPrefix(r, want) {
			t.Fatalf("refusal_code %d: %s", code, r)
		}
	}
}

// TestStoreFailureIs451: the map unavailable → 451 4.3.0, nothing relayed.
func TestStoreFailureIs451(t *testing.T) {
	h := newHarness(t, nil)
	h.db.Close()
	c := h.dial(h.in)
	c.must("250", "EHLO mail.example.com")
	c.must("250", "MAIL FROM:<jane.doe@example.com>")
	if r := c.cmd("RCPT TO:<support@company.example>"); !strings.HasPrefix(r, "451 4.3.0") || !strings.Contains(r, "(session ") {
		t.Fatalf("RCPT with the store closed: %s", r)
	}
	if st := h.ds.Stats(); len(st.Messages) != 0 {
		t.Fatal("relayed")
	}
}

// TestShutdownFinishesTransaction: a transaction under way completes, an
// idle session gets 421, new connections are refused.
func TestShutdownFinishesTransaction(t *testing.T) {
	h := newHarness(t, nil)
	idle := h.dial(h.in)
	idle.must("250", "EHLO idle.example")
	busy := h.dial(h.in)
	busy.must("250", "EHLO mail.example.com")
	busy.must("250", "MAIL FROM:<jane.doe@example.com>")
	busy.must("250", "RCPT TO:<support@company.example>")
	busy.must("354", "DATA")
	busy.write(crlf(customerMsg))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.in.Shutdown(ctx)
	}()
	if r := idle.reply(); !strings.HasPrefix(r, "421 4.3.2") {
		t.Fatalf("idle session: %s", r)
	}
	finishDuringShutdown(t, h, busy, done, "transaction under way")
}

// TestShutdownDeadlineAborts: past the deadline the transaction is
// aborted and the downstream holds nothing.
func TestShutdownDeadlineAborts(t *testing.T) {
	h := newHarness(t, nil)
	busy := h.dial(h.in)
	busy.must("250", "EHLO mail.example.com")
	busy.must("250", "MAIL FROM:<jane.doe@example.com>")
	busy.must("250", "RCPT TO:<support@company.example>")
	busy.must("354", "DATA")
	busy.write("Subject: slow\r\n\r\nstill typing")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.in.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(h.ds.Stats().Messages); n != 0 {
		t.Fatalf("relayed %d", n)
	}
}

// TestConnectionLimitPerIP: over the per-IP limit a client gets 421.
func TestConnectionLimitPerIP(t *testing.T) {
	h := newHarness(t, func(o *harnessOpts) { o.limits.MaxConnectionsPerIP = 1 })
	h.dial(h.in)
	c2 := h.dial2(h.in)
	if r := c2.reply(); !strings.HasPrefix(r, "421 4.7.0") {
		t.Fatalf("second connection: %s", r)
	}
}

// finishDuringShutdown ends the transaction a shutdown is waiting for:
// the final dot gets 250, the shutdown then returns without error, and the
// downstream holds exactly that message.
func finishDuringShutdown(t *testing.T, h *harness, busy *rawClient, done <-chan error, what string) {
	t.Helper()
	busy.write(".\r\n")
	if r := busy.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("%s: %s", what, r)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if n := len(h.ds.Stats().Messages); n != 1 {
		t.Fatalf("relayed %d", n)
	}
}
