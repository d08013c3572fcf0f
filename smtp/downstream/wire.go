package downstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// downWire is the client side of one downstream SMTP connection (RFC 5321):
// the greeting, EHLO (HELO as fallback), STARTTLS, MAIL, RCPT, DATA, RSET
// and QUIT, which is all a relay sends.
//
// Why not go-smtp's Client: it dot-stuffs the message a byte at a time
// through net/textproto (12 % of the inbound route's CPU in the profile),
// splits every message over 4 KiB into several writes, cannot pipeline, and
// sends EHLO again after each RSET. On loopback a write costs about 13 µs,
// more than rewriting a typical message's headers. Here a typical message
// goes out in three writes (MAIL+RCPT, DATA, the text with its final dot)
// instead of five. go-smtp still serves both routes.
type downWire struct {
	conn    net.Conn // the tls.Conn after STARTTLS, else the TCP connection
	br      *bufio.Reader
	bw      *bufio.Writer
	ext     map[string]string // EHLO keywords, upper case → parameters
	timeout time.Duration     // bounds each exchange: one command and its reply
}

const (
	// wireWriteBuf holds the commands and a typical message with its final
	// dot, so that each goes out in one write.
	wireWriteBuf = 16 * 1024
	wireReadBuf  = 4 * 1024
	// maxReplyLine is twice RFC 5321 §4.5.3.1.5's 512 octets, as go-smtp
	// allows; maxReplyLines bounds a multiline reply (EHLO lists a few dozen).
	maxReplyLine  = 2000
	maxReplyLines = 200
)

// errReplySyntax: the downstream's reply is not SMTP; the connection is
// not used again.
var errReplySyntax = errors.New("malformed downstream reply")

func newDownWire(conn net.Conn, timeout time.Duration) *downWire {
	br := wireReaders.Get().(*bufio.Reader)
	bw := wireWriters.Get().(*bufio.Writer)
	br.Reset(conn)
	bw.Reset(conn)
	return &downWire{conn: conn, br: br, bw: bw, timeout: timeout}
}

// The buffers are recycled: with more sessions than pooled connections,
// connections come and go with messages, and fresh 20 KiB per connection
// raised the peak RSS at 200 sessions of 100 KB messages by a third.
var (
	wireReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, wireReadBuf) }}
	wireWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, wireWriteBuf) }}
)

// release gives the buffers back once the connection is closed. Only the
// connection's owner calls it, never a guard (which only closes the
// connection); a wire used after release panics on its nil buffers
// instead of writing into another connection's.
func (w *downWire) release() {
	if w.br == nil {
		return
	}
	w.br.Reset(nil)
	w.bw.Reset(nil)
	wireReaders.Put(w.br)
	wireWriters.Put(w.bw)
	w.br, w.bw = nil, nil
}

// deadline bounds the next exchange. A connection resting in the pool
// keeps a stale deadline; every use sets a new one first.
func (w *downWire) deadline() { _ = w.conn.SetDeadline(time.Now().Add(w.timeout)) }

// greet reads the server's greeting (RFC 5321 §4.3.1: 220, or 554 to refuse).
func (w *downWire) greet() error {
	w.deadline()
	_, err := w.reply(220, false)
	return err
}

// hello sends EHLO and records the extensions; a server that does not know
// EHLO (500, 502) gets HELO (RFC 5321 §3.2).
func (w *downWire) hello(name string) error {
	w.ext = nil
	text, err := w.cmd(250, true, "EHLO ", name)
	var se *gosmtp.SMTPError
	if errors.As(err, &se) && (se.Code == 500 || se.Code == 502) {
		_, err = w.cmd(250, false, "HELO ", name)
		w.ext = map[string]string{}
		return err
	}
	if err != nil {
		return err
	}
	w.ext = parseEHLO(text)
	return nil
}

// parseEHLO reads the keywords of an EHLO reply's lines after the first
// (RFC 5321 §4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param )).
func parseEHLO(text string) map[string]string {
	ext := map[string]string{}
	lines := strings.Split(text, "\n")
	for _, line := range lines[1:] {
		kw, params, _ := strings.Cut(line, " ")
		ext[strings.ToUpper(kw)] = params
	}
	return ext
}

func (w *downWire) has(ext string) bool {
	_, ok := w.ext[ext]
	return ok
}

// startTLS upgrades the connection (RFC 3207 §4) and says EHLO again: the
// server forgets what it said before the handshake (§4.2), and so do we.
func (w *downWire) startTLS(ctx context.Context, cfg *tls.Config, name string) error {
	if !w.has("STARTTLS") {
		return errNoStartTLS
	}
	if _, err := w.cmd(220, false, "STARTTLS"); err != nil {
		return err
	}
	if w.br.Buffered() > 0 {
		// A reply sent in plain text behind the 220 would later be read
		// as if it had come over TLS: response injection (RFC 3207 §6).
		return fmt.Errorf("%w: data after the STARTTLS reply", errReplySyntax)
	}
	tc := tls.Client(w.conn, cfg)
	w.deadline()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	w.conn = tc
	w.br.Reset(tc)
	w.bw.Reset(tc)
	return w.hello(name)
}

// mailRcpt sends MAIL and the transaction's first RCPT. With PIPELINING
// (RFC 2920 §3.1) both go in one write and both replies are read; when
// MAIL fails, the RCPT reply (503 or whatever the server thinks of it) is
// read and dropped. mailErr is MAIL's failure, rcptErr RCPT's.
func (w *downWire) mailRcpt(from string, opts *gosmtp.MailOptions, utf8 bool, to string) (mailErr, rcptErr error) {
	mail, err := w.mailLine(from, opts, utf8)
	if err != nil {
		return err, nil
	}
	if err := validLine(to); err != nil {
		return nil, err
	}
	if !w.has("PIPELINING") {
		if _, err := w.cmd(250, false, mail); err != nil {
			return err, nil
		}
		_, err := w.cmd(250, false, "RCPT TO:<", to, ">")
		return nil, err
	}
	w.deadline()
	w.line(mail)
	w.line("RCPT TO:<", to, ">")
	if err := w.bw.Flush(); err != nil {
		return err, nil
	}
	if _, err := w.reply(250, false); err != nil {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			_, _ = w.reply(250, false) // RCPT's, meaningless without a transaction
		}
		return err, nil
	}
	_, err = w.reply(250, false)
	return nil, err
}

// mailLine is the MAIL command with the parameters we pass on: BODY
// (RFC 6152 §2, when the server offers 8BITMIME) and SMTPUTF8 (RFC 6531
// §3.4) when utf8 is set. The transaction decides utf8 (intl.go) and
// never sets it for a server that does not offer the extension; an
// internationalized message is not downgraded.
func (w *downWire) mailLine(from string, opts *gosmtp.MailOptions, utf8 bool) (string, error) {
	if err := validLine(from); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("MAIL FROM:<")
	sb.WriteString(from)
	sb.WriteByte('>')
	if opts != nil && opts.Body != "" && w.has("8BITMIME") {
		sb.WriteString(" BODY=")
		sb.WriteString(string(opts.Body))
	}
	if utf8 {
		if !w.has("SMTPUTF8") {
			return "", ErrNoSMTPUTF8
		}
		sb.WriteString(" SMTPUTF8")
	}
	return sb.String(), nil
}

// rcpt sends one more RCPT.
func (w *downWire) rcpt(to string) error {
	if err := validLine(to); err != nil {
		return err
	}
	_, err := w.cmd(250, false, "RCPT TO:<", to, ">")
	return err
}

// data sends DATA and waits for 354 (RFC 5321 §4.1.1.4); the message text
// follows through dot.
func (w *downWire) data() (*dotStuffer, error) {
	if _, err := w.cmd(354, false, "DATA"); err != nil {
		return nil, err
	}
	return &dotStuffer{bw: w.bw}, nil
}

// endData sends the end of the text and waits for the server's verdict.
func (w *downWire) endData(d *dotStuffer) error {
	w.deadline()
	d.close()
	if err := w.bw.Flush(); err != nil {
		return err
	}
	_, err := w.reply(250, false)
	return err
}

// reset sends RSET (RFC 5321 §4.1.1.5): a cheap check that the server is
// still there. Unlike go-smtp's client, no EHLO follows: RSET keeps the
// session's state.
func (w *downWire) reset() error {
	_, err := w.cmd(250, false, "RSET")
	return err
}

// quit sends QUIT and reads 221 within timeout; the caller closes the
// connection.
func (w *downWire) quit(timeout time.Duration) error {
	_ = w.conn.SetDeadline(time.Now().Add(timeout))
	w.line("QUIT")
	if err := w.bw.Flush(); err != nil {
		return err
	}
	_, err := w.reply(221, false)
	return err
}

// cmd sends one command line made of parts and reads its reply.
func (w *downWire) cmd(expect int, keep bool, parts ...string) (string, error) {
	w.deadline()
	w.line(parts...)
	if err := w.bw.Flush(); err != nil {
		return "", err
	}
	return w.reply(expect, keep)
}

// line buffers one command line; errors surface at Flush.
func (w *downWire) line(parts ...string) {
	for _, p := range parts {
		_, _ = w.bw.WriteString(p)
	}
	_, _ = w.bw.WriteString("\r\n")
}

// validLine refuses a command argument that would end the line early
// (a CR or LF would start a second command: command injection).
func validLine(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("a command argument must not contain CR or LF")
	}
	return nil
}

// reply reads one reply (RFC 5321 §4.2: "ddd-text" lines, then "ddd text"
// or "ddd"; all with the same code). A reply of another class than expect
// (2xx when expect is 250) is a *gosmtp.SMTPError with its enhanced code
// (RFC 3463) split off. The text (lines joined by "\n") is built only when
// keep is set or the reply is an error: the hot path allocates nothing.
func (w *downWire) reply(expect int, keep bool) (string, error) {
	var (
		code  int
		lines []string
	)
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return "", fmt.Errorf("%w: more than %d lines", errReplySyntax, maxReplyLines)
		}
		line, err := w.readLine()
		if err != nil {
			return "", err
		}
		c, more, text, err := splitReplyLine(line)
		if err != nil {
			return "", err
		}
		if n > 0 && c != code {
			return "", fmt.Errorf("%w: code %d inside a reply of %d", errReplySyntax, c, code)
		}
		code = c
		ok := code/100 == expect/100
		if keep || !ok {
			lines = append(lines, string(text))
		}
		if !more {
			break
		}
	}
	if code/100 != expect/100 {
		return "", replyError(code, lines)
	}
	return strings.Join(lines, "\n"), nil
}

// readLine returns one reply line without its line end. A line longer
// than maxReplyLine is a protocol error, not a memory sink.
func (w *downWire) readLine() ([]byte, error) {
	line, err := w.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxReplyLine:
		return nil, fmt.Errorf("%w: line longer than %d octets", errReplySyntax, maxReplyLine)
	case err != nil:
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// splitReplyLine parses "ddd", "ddd text" or "ddd-text". Its errors never
// quote the line: a downstream's text may name an address (on the
// outbound route, the customer's), and errors reach the logs.
func splitReplyLine(line []byte) (code int, more bool, text []byte, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, nil, fmt.Errorf("%w: a line of %d octets without a reply code", errReplySyntax, len(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, nil, nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, nil, fmt.Errorf("%w: reply code %d followed by %q", errReplySyntax, code, line[3])
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// replyError is the *gosmtp.SMTPError of a refusal, with the enhanced code
// (RFC 2034 §4: "class.subject.detail" first on each line) taken out of the
// text, as go-smtp's client reports it.
func replyError(code int, lines []string) *gosmtp.SMTPError {
	se := &gosmtp.SMTPError{Code: code, Message: strings.Join(lines, "\n")}
	first, _, _ := strings.Cut(lines[0], " ")
	enh, ok := parseEnhanced(first, code)
	if !ok {
		return se
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(strings.TrimPrefix(l, first), " ")
	}
	se.EnhancedCode, se.Message = enh, strings.Join(lines, "\n")
	return se
}

// parseEnhanced reads "2.1.0": the class must be the reply's (RFC 3463 §2).
func parseEnhanced(s string, code int) (gosmtp.EnhancedCode, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCode{}, false
	}
	var enh gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return gosmtp.EnhancedCode{}, false
		}
		enh[i] = n
	}
	if enh[0] != code/100 {
		return gosmtp.EnhancedCode{}, false
	}
	return enh, true
}

// dotStuffer writes message text in the DATA phase (RFC 5321 §4.5.2): a
// line that starts with "." gets another one, and a bare LF becomes CRLF;
// close ends the text with CRLF "." CRLF. It copies whole lines, not bytes.
// For text whose lines end in CRLF (all the routes relay: bare CR and LF
// are refused at DATA) it writes what net/textproto's DotWriter writes.
type dotStuffer struct {
	bw    *bufio.Writer
	state int
}

const (
	dotBegin     = iota // nothing written yet
	dotLineStart        // after a line end
	dotInLine           // inside a line
	dotAfterCR          // inside a line, after a CR
)

func (d *dotStuffer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if (d.state == dotBegin || d.state == dotLineStart) && p[0] == '.' {
			_ = d.bw.WriteByte('.')
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			_, _ = d.bw.Write(p)
			d.state = dotInLine
			if p[len(p)-1] == '\r' {
				d.state = dotAfterCR
			}
			break
		}
		crlf := (i > 0 && p[i-1] == '\r') || (i == 0 && d.state == dotAfterCR)
		if crlf {
			_, _ = d.bw.Write(p[:i+1])
		} else {
			_, _ = d.bw.Write(p[:i])
			_, _ = d.bw.WriteString("\r\n")
		}
		d.state = dotLineStart
		p = p[i+1:]
	}
	// bufio.Writer keeps its first error and returns it from every later
	// call: a failed write is reported here or at the final Flush.
	if _, err := d.bw.Write(nil); err != nil {
		return 0, err
	}
	return n, nil
}

// close ends the text: the last line gets its CRLF if it lacks one, then
// the final "." line.
func (d *dotStuffer) close() {
	switch d.state {
	case dotAfterCR:
		_ = d.bw.WriteByte('\n')
	case dotBegin, dotInLine:
		_, _ = d.bw.WriteString("\r\n")
	}
	_, _ = d.bw.WriteString(".\r\n")
}
