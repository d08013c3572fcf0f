package smtp

import (
	"bufio"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// recorder is a minimal go-smtp backend whose sessions read DATA and BDAT
// through StrictData, as the routes do, and record what they accept.
type recorder struct {
	mu       sync.Mutex
	senders  []string // every MAIL FROM the server executed
	messages []string // every message accepted
}

func (b *recorder) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &recorderSession{b: b}, nil
}

type recorderSession struct{ b *recorder }

func (s *recorderSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.senders = append(s.b.senders, from)
	return nil
}

func (s *recorderSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *recorderSession) Reset()                                 {}
func (s *recorderSession) Logout() error                          { return nil }

func (s *recorderSession) Data(r io.Reader) error {
	data, err := io.ReadAll(NewStrictData(r))
	if err != nil {
		return err // unwrapped: go-smtp type-asserts *SMTPError
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.messages = append(s.b.messages, string(data))
	return nil
}

func (b *recorder) snapshot() (senders, messages []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.senders...), append([]string(nil), b.messages...)
}

// startServer runs a go-smtp server on 127.0.0.1:0 and returns its address.
func startServer(t *testing.T) (*recorder, string) {
	t.Helper()
	be := &recorder{}
	s := gosmtp.NewServer(be)
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return be, l.Addr().String()
}

// client is a hand-written SMTP client: it sends exactly the bytes it is given.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220 ")
	c.send("EHLO client.example\r\n")
	c.expect("250 ")
	return c
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *client) reply() string {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply: %v (got %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

func (c *client) expect(prefix string) {
	c.t.Helper()
	if got := c.reply(); !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("reply %q, want %q…", got, prefix)
	}
}

// envelope opens a transaction from legit@example.com.
func (c *client) envelope() {
	c.t.Helper()
	c.send("MAIL FROM:<legit@example.com>\r\n")
	c.expect("250 ")
	c.send("RCPT TO:<support@company.example>\r\n")
	c.expect("250 ")
}

// expectInSync checks that the next command gets its own reply: the session
// did not take message data for commands or the other way round.
func (c *client) expectInSync() {
	c.t.Helper()
	c.send("RSET\r\n")
	c.expect("250 2.0.0 Session reset")
	c.send("NOOP\r\n")
	c.expect("250 2.0.0 I have successfully done nothing")
	c.send("QUIT\r\n")
	c.expect("221 ")
	if extra, err := io.ReadAll(c.r); err != nil || len(extra) != 0 {
		c.t.Fatalf("after QUIT: %q, %v; want the connection closed and no more replies", extra, err)
	}
}

const smuggled = "MAIL FROM:<admin@company.example>\r\n" +
	"RCPT TO:<victim@company.example>\r\n" +
	"DATA\r\n" +
	"From: admin@company.example\r\n\r\nsmuggled\r\n"

// smugglingVariants are the end-of-data look-alikes of the SMTP smuggling
// research (SEC Consult 2023, CVE-2023-51764/5/6) that go-smtp passes to the
// session with their bare CR or LF intact. The last two it hid until
// third_party/go-smtp's patch 2 (PATCHES.md): it dropped the "." and the
// CR, so the session saw no bare CR and accepted the message.
var smugglingVariants = []string{
	"\n.\n",
	"\n.\r\n",
	"\r\n.\n",
	"\r.\r",
	"\r.\r\n",
	"\r.\n",
	"\n.\r",
	"\r\n\n.\r\n",
	"\r\n.\r",
	"\r\n.\r\r\n",
}

func TestServerRefusesSmuggling(t *testing.T) {
	for _, eod := range smugglingVariants {
		t.Run(strconv.Quote(eod), func(t *testing.T) {
			be, addr := startServer(t)
			c := dial(t, addr)
			c.envelope()
			c.send("DATA\r\n")
			c.expect("354 ")
			c.send("From: legit@example.com\r\n\r\nhello" + eod + smuggled + "\r\n.\r\n")
			c.expect("500 5.5.2 ")
			c.expectInSync()

			senders, messages := be.snapshot()
			if len(messages) != 0 {
				t.Errorf("delivered %q, want nothing", messages)
			}
			if len(senders) != 1 || senders[0] != "legit@example.com" {
				t.Errorf("MAIL FROM executed for %q, want only legit@example.com", senders)
			}
		})
	}
}

// TestServerSmugglingThenMail: after the refusal the same connection can
// send a clean message, which is delivered alone.
func TestServerSmugglingThenMail(t *testing.T) {
	be, addr := startServer(t)
	c := dial(t, addr)
	c.envelope()
	c.send("DATA\r\n")
	c.expect("354 ")
	c.send("hello\n.\n" + smuggled + "\r\n.\r\n")
	c.expect("500 5.5.2 ")
	c.envelope()
	c.send("DATA\r\n")
	c.expect("354 ")
	c.send("Subject: ok\r\n\r\n..dot-stuffed\r\nbye\r\n.\r\n")
	c.expect("250 ")
	c.expectInSync()

	_, messages := be.snapshot()
	if want := "Subject: ok\r\n\r\n.dot-stuffed\r\nbye\r\n"; len(messages) != 1 || messages[0] != want {
		t.Fatalf("delivered %q, want [%q]", messages, want)
	}
}

func TestServerCleanMessage(t *testing.T) {
	be, addr := startServer(t)
	c := dial(t, addr)
	c.envelope()
	c.send("DATA\r\n")
	c.expect("354 ")
	body := "From: legit@example.com\r\nSubject: hi\r\n\r\n" + strings.Repeat("line\r\n", 1000)
	c.send(body + ".\r\n")
	c.expect("250 ")
	c.expectInSync()
	if _, messages := be.snapshot(); len(messages) != 1 || messages[0] != body {
		t.Fatalf("delivered %d messages, want the body once", len(messages))
	}
}

// TestServerNUL: a NUL in DATA or BDAT is refused 500 5.5.2 after the
// data, and the session stays in step.
func TestServerNUL(t *testing.T) {
	const msg = "Subject: a\r\n\r\nhel\x00lo\r\n"
	for _, bdat := range []bool{false, true} {
		t.Run(map[bool]string{false: "DATA", true: "BDAT"}[bdat], func(t *testing.T) {
			be, addr := startServer(t)
			c := dial(t, addr)
			c.envelope()
			if bdat {
				c.bdat(msg, true)
			} else {
				c.send("DATA\r\n")
				c.expect("354 ")
				c.send(msg + ".\r\n")
			}
			c.expect("500 5.5.2 NUL")
			c.expectInSync()
			if _, messages := be.snapshot(); len(messages) != 0 {
				t.Errorf("delivered %q, want nothing", messages)
			}
		})
	}
}

// TestServerCRCRLFEndsData: "\r\r\n.\r\n" holds CRLF "." CRLF, the end of
// the data (RFC 5321 4.1.1.4); the bare CR before it is refused and the
// client gets its reply at once (go-smtp waited for more data before
// third_party/go-smtp's patch 2).
func TestServerCRCRLFEndsData(t *testing.T) {
	be, addr := startServer(t)
	c := dial(t, addr)
	c.envelope()
	c.send("DATA\r\n")
	c.expect("354 ")
	c.send("Subject: a\r\n\r\nhello\r\r\n.\r\n")
	c.expect("500 5.5.2 ")
	c.expectInSync()
	if _, messages := be.snapshot(); len(messages) != 0 {
		t.Errorf("delivered %q, want nothing", messages)
	}
}

// bdat sends one BDAT command with its chunk.
func (c *client) bdat(chunk string, last bool) {
	cmd := "BDAT " + strconv.Itoa(len(chunk))
	if last {
		cmd += " LAST"
	}
	c.send(cmd + "\r\n" + chunk)
}

// TestServerBDAT: go-smtp always offers CHUNKING and copies the chunks to
// Session.Data unchanged (no dots, no line-ending rules), so the same check
// applies. StrictData drains to the LAST chunk, so the refusal answers the
// whole message and the chunk sizes keep the session in sync.
func TestServerBDAT(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		reply  string // reply to the LAST chunk
	}{
		{"clean", []string{"Subject: a\r\n\r\n", "hello\r\n"}, "250 "},
		{"crlf split across chunks", []string{"Subject: a\r\n\r\nhello\r", "\nbye\r\n"}, "250 "},
		{"bare lf in first chunk", []string{"Subject: a\r\n\r\nhello\n.\n" + smuggled, "bye\r\n"}, "500 5.5.2 "},
		{"bare lf in last chunk", []string{"Subject: a\r\n\r\n", "hello\n"}, "500 5.5.2 "},
		{"bare cr across chunks", []string{"Subject: a\r\n\r\nhello\r", "bye\r\n"}, "500 5.5.2 "},
		{"bare cr at the end", []string{"Subject: a\r\n\r\n", "hello\r"}, "500 5.5.2 "},
		{"smuggled dot cr", []string{"Subject: a\r\n\r\nhello\r\n.\r" + smuggled}, "500 5.5.2 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, addr := startServer(t)
			c := dial(t, addr)
			c.envelope()
			for i, chunk := range tc.chunks {
				last := i == len(tc.chunks)-1
				c.bdat(chunk, last)
				if last {
					c.expect(tc.reply)
				} else {
					c.expect("250 ")
				}
			}
			c.expectInSync()

			senders, messages := be.snapshot()
			if len(senders) != 1 {
				t.Errorf("MAIL FROM executed for %q, want only legit@example.com", senders)
			}
			want := 0
			if strings.HasPrefix(tc.reply, "250") {
				want = 1
			}
			if len(messages) != want {
				t.Errorf("delivered %d messages, want %d", len(messages), want)
			}
			if want == 1 && messages[0] != strings.Join(tc.chunks, "") {
				t.Errorf("delivered %q, want the chunks unchanged", messages[0])
			}
		})
	}
}
