package downstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// TestDotStufferMatchesTextproto: for text with CRLF line ends (and bare
// LF, which both turn into CRLF), the bulk stuffer writes what
// net/textproto's byte-at-a-time DotWriter writes, however the text is
// split into writes.
func TestDotStufferMatchesTextproto(t *testing.T) {
	texts := []string{
		"",
		"a",
		".",
		"\r\n",
		".\r\n",
		"..\r\n",
		"Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n",
		"Subject: x\r\n\r\n.\r\nnot the end\r\n",
		"no final line end",
		"ends in CR\r",
		"bare\nLF\n.dot after LF\n",
		"\n.\n",
		"a\rb\r\n.c\r\n",
		strings.Repeat("line of text\r\n.dot\r\n", 2000),
	}
	for _, text := range texts {
		want := textprotoDots(text)
		for _, size := range []int{1, 2, 3, 7, 64, 1 << 20} {
			if got := stuffDots(text, size); got != want {
				t.Errorf("text %.40q in %d-byte writes:\n got %.80q\nwant %.80q", text, size, got, want)
			}
		}
	}
}

func textprotoDots(text string) string {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	dw := textproto.NewWriter(bw).DotWriter()
	_, _ = dw.Write([]byte(text))
	_ = dw.Close()
	return b.String()
}

func stuffDots(text string, size int) string {
	var b bytes.Buffer
	bw := bufio.NewWriterSize(&b, 16)
	d := &dotStuffer{bw: bw}
	for p := []byte(text); len(p) > 0; {
		n := min(size, len(p))
		if m, err := d.Write(p[:n]); m != n || err != nil {
			return "write failed"
		}
		p = p[n:]
	}
	d.close()
	_ = bw.Flush()
	return b.String()
}

// TestDotStufferWriteError: a write that fails reaches the caller.
func TestDotStufferWriteError(t *testing.T) {
	bw := bufio.NewWriterSize(failingWriter{}, 16)
	d := &dotStuffer{bw: bw}
	if _, err := d.Write(bytes.Repeat([]byte("x\r\n"), 20)); err == nil {
		t.Fatal("a failing connection must fail the write")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWireReply(t *testing.T) {
	long := "250 " + strings.Repeat("x", maxReplyLine) + "\r\n"
	many := strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n"
	for _, tc := range []struct {
		name, in string
		expect   int
		text     string              // the reply's text when accepted
		code     int                 // the *gosmtp.SMTPError's code when refused
		enh      gosmtp.EnhancedCode // and its enhanced code
		msg      string              // and its text
		syntax   bool                // errReplySyntax
		other    func(error) bool    // another error
	}{
		{name: "one line", in: "250 OK\r\n", expect: 250, text: "OK"},
		{name: "code only", in: "250\r\n", expect: 250, text: ""},
		{name: "multiline", in: "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n", expect: 250, text: "mx\nPIPELINING\nSIZE 10"},
		{name: "class matches", in: "251 forwarded\r\n", expect: 250, text: "forwarded"},
		{name: "bare LF", in: "354 go\n", expect: 354, text: "go"},
		{name: "refusal", in: "550 5.1.1 no such user\r\n", expect: 250, code: 550, enh: gosmtp.EnhancedCode{5, 1, 1}, msg: "no such user"},
		{name: "multiline refusal", in: "451-4.3.0 busy\r\n451 4.3.0 later\r\n", expect: 250, code: 451, enh: gosmtp.EnhancedCode{4, 3, 0}, msg: "busy\nlater"},
		{name: "no enhanced code", in: "554 go away\r\n", expect: 220, code: 554, msg: "go away"},
		{name: "enhanced of another class", in: "550 4.1.1 odd\r\n", expect: 250, code: 550, msg: "4.1.1 odd"},
		{name: "codes differ", in: "250-a\r\n251 b\r\n", expect: 250, syntax: true},
		{name: "short", in: "25\r\n", expect: 250, syntax: true},
		{name: "address, no code", in: "5x0 <jane.doe@example.com> unknown\r\n", expect: 250, syntax: true},
		{name: "address, no separator", in: "550<jane.doe@example.com>\r\n", expect: 250, syntax: true},
		{name: "not digits", in: "2x0 ok\r\n", expect: 250, syntax: true},
		{name: "no separator", in: "250x\r\n", expect: 250, syntax: true},
		{name: "class 6", in: "650 ok\r\n", expect: 250, syntax: true},
		{name: "long line", in: long, expect: 250, syntax: true},
		{name: "too many lines", in: many, expect: 250, syntax: true},
		{name: "cut off", in: "250-a\r\n250 b", expect: 250, other: func(err error) bool { return errors.Is(err, io.EOF) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &downWire{br: bufio.NewReaderSize(strings.NewReader(tc.in), wireReadBuf)}
			text, err := w.reply(tc.expect, true)
			var se *gosmtp.SMTPError
			switch {
			case tc.syntax:
				if !errors.Is(err, errReplySyntax) {
					t.Fatalf("error %v: want errReplySyntax", err)
				}
				if strings.Contains(err.Error(), "@") {
					t.Fatalf("error %q quotes the reply: it reaches the logs", err)
				}
			case tc.other != nil:
				if err == nil || !tc.other(err) {
					t.Fatalf("error %v", err)
				}
			case tc.code != 0:
				if !errors.As(err, &se) || se.Code != tc.code || se.EnhancedCode != tc.enh || se.Message != tc.msg {
					t.Fatalf("error %#v: want %d %v %q", err, tc.code, tc.enh, tc.msg)
				}
			default:
				if err != nil || text != tc.text {
					t.Fatalf("reply %q, %v: want %q", text, err, tc.text)
				}
			}
		})
	}
}

// TestWireReplyNoText: an accepted reply's text is not kept unless asked.
func TestWireReplyNoText(t *testing.T) {
	w := &downWire{br: bufio.NewReader(strings.NewReader("250 2.1.0 sender ok\r\n"))}
	if text, err := w.reply(250, false); err != nil || text != "" {
		t.Fatalf("reply %q, %v", text, err)
	}
}

// scriptDS is a downstream that follows a script over loopback, for what
// a go-smtp server cannot be made to do: leave out PIPELINING or EHLO,
// check that commands arrive together, inject a reply.
func scriptDS(t *testing.T, script func(c *textproto.Conn, raw net.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
		done <- script(textproto.NewConn(raw), raw)
	}()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("downstream script: %v", err)
		}
	})
	return ln.Addr().String()
}

// expect reads one command line and checks it.
func expect(c *textproto.Conn, want string) error {
	line, err := c.ReadLine()
	if err != nil {
		return err
	}
	if line != want {
		return &scriptError{got: line, want: want}
	}
	return nil
}

type scriptError struct{ got, want string }

func (e *scriptError) Error() string { return "got " + e.got + ", want " + e.want }

// greetEHLO greets and answers EHLO with the extensions given.
func greetEHLO(c *textproto.Conn, ext ...string) error {
	if err := c.PrintfLine("220 ds.test ESMTP"); err != nil {
		return err
	}
	if err := expect(c, "EHLO proxy.test"); err != nil {
		return err
	}
	lines := append([]string{"ds.test"}, ext...)
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		if err := c.PrintfLine("250%s%s", sep, l); err != nil {
			return err
		}
	}
	return nil
}

// finish answers DATA, reads the text to its dot and answers QUIT.
func finish(c *textproto.Conn, wantText string) error {
	if err := expect(c, "DATA"); err != nil {
		return err
	}
	if err := c.PrintfLine("354 go"); err != nil {
		return err
	}
	text, err := io.ReadAll(c.DotReader())
	if err != nil {
		return err
	}
	if string(text) != wantText {
		return &scriptError{got: string(text), want: wantText}
	}
	if err := c.PrintfLine("250 queued"); err != nil {
		return err
	}
	if err := expect(c, "QUIT"); err != nil {
		return err
	}
	return c.PrintfLine("221 bye")
}

func newScriptDS(t *testing.T, addr string) *Pool {
	t.Helper()
	d, err := New(Config{Address: addr, TLS: TLSInsecure, HeloName: "proxy.test", Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestWirePipelining: with PIPELINING, MAIL and the first RCPT arrive
// before either is answered (the script would time the client out
// otherwise); later RCPTs go one by one; a refused recipient leaves the
// transaction open.
func TestWirePipelining(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "PIPELINING", "8BITMIME", "SMTPUTF8"); err != nil {
			return err
		}
		if err := expect(c, "MAIL FROM:<from@relay.test> BODY=8BITMIME SMTPUTF8"); err != nil {
			return err
		}
		if err := expect(c, "RCPT TO:<a@crm.test>"); err != nil {
			return err
		}
		if err := c.PrintfLine("250 2.1.0 ok\r\n250 2.1.5 ok"); err != nil {
			return err
		}
		if err := expect(c, "RCPT TO:<b@crm.test>"); err != nil {
			return err
		}
		if err := c.PrintfLine("550 5.1.1 no b@crm.test here"); err != nil {
			return err
		}
		return finish(c, "Subject: x\n\n.dot\n")
	})
	d := newScriptDS(t, addr)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME, UTF8: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Rcpt(ctx, "a@crm.test"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, txn.Rcpt(ctx, "b@crm.test"), ErrPerm, "rcpt", 550)
	if err := txn.Data(ctx, strings.NewReader("Subject: x\r\n\r\n.dot\r\n")); err != nil {
		t.Fatal(err)
	}
}

// TestWireNoPipelining: without PIPELINING, RCPT waits for MAIL's reply;
// without 8BITMIME, no BODY parameter.
func TestWireNoPipelining(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, raw net.Conn) error {
		if err := greetEHLO(c, "SIZE 1000000"); err != nil {
			return err
		}
		if err := expect(c, "MAIL FROM:<from@relay.test>"); err != nil {
			return err
		}
		// Nothing more may come before the reply.
		_ = raw.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if line, err := c.ReadLine(); !errors.Is(err, os.ErrDeadlineExceeded) {
			return &scriptError{got: line, want: "nothing before the MAIL reply"}
		}
		_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.PrintfLine("250 ok"); err != nil {
			return err
		}
		if err := expect(c, "RCPT TO:<a@crm.test>"); err != nil {
			return err
		}
		if err := c.PrintfLine("250 ok"); err != nil {
			return err
		}
		return finish(c, "x\n")
	})
	d := newScriptDS(t, addr)
	if err := sendWith(dsCtx(t), d, &gosmtp.MailOptions{Body: gosmtp.Body8BitMIME}, "x\r\n", "a@crm.test"); err != nil {
		t.Fatal(err)
	}
}

// TestWirePipelinedMailRefused: MAIL refused in a pipelined pair is a
// "mail" failure with its code; the RCPT reply behind it is consumed, and
// the connection is not pooled.
func TestWirePipelinedMailRefused(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "PIPELINING"); err != nil {
			return err
		}
		if err := expect(c, "MAIL FROM:<from@relay.test>"); err != nil {
			return err
		}
		if err := expect(c, "RCPT TO:<a@crm.test>"); err != nil {
			return err
		}
		if err := c.PrintfLine("553 5.7.1 sender refused\r\n503 5.5.1 no MAIL"); err != nil {
			return err
		}
		_, err := c.ReadLine() // the client closes without QUIT
		if errors.Is(err, io.EOF) {
			return nil
		}
		return &scriptError{got: "more", want: "the connection closed"}
	})
	d := newScriptDS(t, addr)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	de := wantKind(t, txn.Rcpt(ctx, "a@crm.test"), ErrPerm, "mail", 553)
	if de.Enhanced != (gosmtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("enhanced %v", de.Enhanced)
	}
	if d.Idle() != 0 {
		t.Fatal("a connection whose MAIL failed was pooled")
	}
}

// TestWireHeloFallback: a server that refuses EHLO gets HELO, and no
// extension is used.
func TestWireHeloFallback(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		steps := []struct{ in, out string }{
			{"", "220 old.test"},
			{"EHLO proxy.test", "502 5.5.2 what?"},
			{"HELO proxy.test", "250 old.test"},
			{"MAIL FROM:<from@relay.test>", "250 ok"},
			{"RCPT TO:<a@crm.test>", "250 ok"},
		}
		for _, s := range steps {
			if s.in != "" {
				if err := expect(c, s.in); err != nil {
					return err
				}
			}
			if err := c.PrintfLine("%s", s.out); err != nil {
				return err
			}
		}
		return finish(c, "x\n")
	})
	d := newScriptDS(t, addr)
	if err := send(dsCtx(t), d, "x\r\n", "a@crm.test"); err != nil {
		t.Fatal(err)
	}
}

// TestWireNoSMTPUTF8: a non-ASCII recipient is not sent to a server that
// does not offer SMTPUTF8 (RFC 6531 §3.2), nothing is sent at all, and the
// refusal is permanent (553 5.6.7), for this recipient only: issue 16 had
// it temporary, retried for days.
func TestWireNoSMTPUTF8(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "PIPELINING"); err != nil {
			return err
		}
		line, err := c.ReadLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return &scriptError{got: line, want: "nothing"}
	})
	d := newScriptDS(t, addr)
	ctx := dsCtx(t)
	txn, err := d.Begin(ctx, "from@relay.test", &gosmtp.MailOptions{UTF8: true})
	if err != nil {
		t.Fatal(err)
	}
	err = txn.Rcpt(ctx, "ü@crm.test")
	de := wantKind(t, err, ErrPerm, "rcpt", 553)
	if de.Enhanced != (gosmtp.EnhancedCode{5, 6, 7}) || !errors.Is(err, ErrNoSMTPUTF8) {
		t.Fatalf("error %v: want 5.6.7 and ErrNoSMTPUTF8", err)
	}
	txn.Abort()
}

// TestWireStartTLSInjection: a reply sent in plain text behind the 220 for
// STARTTLS ends the connection before the handshake.
func TestWireStartTLSInjection(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "STARTTLS"); err != nil {
			return err
		}
		if err := expect(c, "STARTTLS"); err != nil {
			return err
		}
		if err := c.PrintfLine("220 go ahead\r\n250 injected"); err != nil {
			return err
		}
		_, _ = c.ReadLine()
		return nil
	})
	d, err := New(Config{Address: addr, HeloName: "proxy.test", Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Begin(dsCtx(t), "from@relay.test", nil)
	if !errors.Is(err, errReplySyntax) || !errors.Is(err, ErrTemp) {
		t.Fatalf("error %v: want a temporary errReplySyntax", err)
	}
}

// TestWireCommandInjection: an argument with a line end never reaches the
// server as a second command.
func TestWireCommandInjection(t *testing.T) {
	addr := scriptDS(t, func(c *textproto.Conn, _ net.Conn) error {
		if err := greetEHLO(c, "PIPELINING"); err != nil {
			return err
		}
		line, err := c.ReadLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		return &scriptError{got: line, want: "nothing"}
	})
	d := newScriptDS(t, addr)
	ctx := context.Background()
	txn, err := d.Begin(ctx, "from@relay.test>\r\nRCPT TO:<x@evil.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKind(t, txn.Rcpt(ctx, "a@crm.test"), ErrTemp, "mail", 0)
}
