package downstream

import (
	"errors"
	"net"
	"net/textproto"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/smtp/downstream/downstreamtest"
)

const utf8Rcpt = "jörg@bücher.example"

// wantNoUTF8 checks a permanent 553 5.6.7 for lack of SMTPUTF8.
func wantNoUTF8(t *testing.T, err error, stage string) {
	t.Helper()
	de := wantKind(t, err, ErrPerm, stage, 553)
	if de.Enhanced != (gosmtp.EnhancedCode{5, 6, 7}) || !errors.Is(err, ErrNoSMTPUTF8) {
		t.Fatalf("error %v: want 5.6.7 and ErrNoSMTPUTF8", err)
	}
}

// TestSMTPUTF8ByNeed: SMTPUTF8 goes with MAIL whenever the envelope or
// the header needs it, whatever the client declared (issue 16: the CRM
// never declares it, it sees ASCII tokens, and the smarthost answered 501
// to the restored address); a recipient or header that needs it after MAIL
// went without restarts the transaction with it; an ASCII message goes
// without it even when the client declared it.
func TestSMTPUTF8ByNeed(t *testing.T) {
	ascii := "Subject: hi\r\n\r\nbody\r\n"
	utf8Header := "Subject: Grüße\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name     string
		opts     *gosmtp.MailOptions
		rcpts    []string
		body     string
		wantMail []bool // SMTPUTF8 on each MAIL the server saw
	}{
		{"restored recipient", nil, []string{utf8Rcpt}, ascii, []bool{true}},
		{"second recipient", nil, []string{"a@crm.test", utf8Rcpt}, ascii, []bool{false, true}},
		{"header", nil, []string{"a@crm.test"}, utf8Header, []bool{false, true}},
		{"declared, header", &gosmtp.MailOptions{UTF8: true}, []string{"a@crm.test"}, utf8Header, []bool{true}},
		{"ascii", nil, []string{"a@crm.test"}, ascii, []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &downstreamtest.Sink{SMTPUTF8: true}
			d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
			if err := sendWith(dsCtx(t), d, tc.opts, tc.body, tc.rcpts...); err != nil {
				t.Fatal(err)
			}
			st := b.Stats()
			if len(st.Messages) != 1 || st.Messages[0] != tc.body {
				t.Fatalf("messages %q", st.Messages)
			}
			if !equalBools(st.UTF8Mail, tc.wantMail) {
				t.Fatalf("SMTPUTF8 on MAIL: %v, want %v", st.UTF8Mail, tc.wantMail)
			}
		})
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSMTPUTF8NotOffered: to a hop without SMTPUTF8, a message that needs
// it is refused permanently (553 5.6.7; issue 16: it was 451 4.4.2,
// retried for days), at the recipient or at DATA, with nothing delivered;
// a message that only declared it goes through.
func TestSMTPUTF8NotOffered(t *testing.T) {
	b := &downstreamtest.Sink{}
	d := newDS(t, downstreamtest.Start(t, b, nil), nil, nil)
	ctx := dsCtx(t)

	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNoUTF8(t, txn.Rcpt(ctx, utf8Rcpt), "rcpt")
	if err := txn.Rcpt(ctx, "a@crm.test"); err != nil { // the transaction goes on
		t.Fatal(err)
	}
	if err := txn.Data(ctx, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}

	err = sendWith(ctx, d, nil, "Subject: Grüße\r\n\r\nx\r\n", "a@crm.test")
	wantNoUTF8(t, err, "data")

	txn, err = d.Begin(ctx, "jörg@bücher.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNoUTF8(t, txn.Rcpt(ctx, "a@crm.test"), "mail")

	declared := &gosmtp.MailOptions{UTF8: true}
	if err := sendWith(ctx, d, declared, "Subject: plain\r\n\r\nx\r\n", "a@crm.test"); err != nil {
		t.Fatalf("declared SMTPUTF8, ASCII message: %v", err)
	}
	if st := b.Stats(); len(st.Messages) != 2 {
		t.Fatalf("%d messages: want the two ASCII ones", len(st.Messages))
	}
}

// TestSMTPUTF8RestartRefused: when the restart with SMTPUTF8 loses a
// recipient accepted before, the transaction ends (temporary, no code):
// the session starts over rather than deliver to fewer recipients.
func TestSMTPUTF8RestartRefused(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "SMTPUTF8", "8BITMIME"); err != nil {
			return err
		}
		for _, step := range []struct{ cmd, reply string }{
			{"MAIL FROM:<from@relay.test>", "250 2.1.0 ok"},
			{"RCPT TO:<a@crm.test>", "250 2.1.5 ok"},
			{"RSET", "250 2.0.0 ok"},
			{"MAIL FROM:<from@relay.test> SMTPUTF8", "250 2.1.0 ok"},
			{"RCPT TO:<a@crm.test>", "550 5.1.1 a@crm.test gone now"},
		} {
			if err := expect(c, step.cmd); err != nil {
				return err
			}
			if err := c.PrintfLine("%s", step.reply); err != nil {
				return err
			}
		}
		_, err := c.ReadLine() // the client hangs up without a dot
		if err != nil {
			return nil
		}
		return errors.New("a command after the failed restart")
	})
	d := newScriptDS(t, addr)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Rcpt(ctx, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	err = txn.Rcpt(ctx, utf8Rcpt)
	de := wantKind(t, err, ErrTemp, "rcpt", 0)
	if !errors.Is(err, errAgainUTF8) || strings.Contains(err.Error(), "gone") {
		t.Fatalf("error %v: want errAgainUTF8 without the reply text", de)
	}
}
