package smtp

import (
	"bytes"
	"errors"
	"io"
	"sync"

	gosmtp "github.com/emersion/go-smtp"
)

// ErrBareLineEnding is the reply for a message whose data holds a CR or an LF
// that is not part of a CRLF pair. RFC 5321 2.3.8: "CR and LF MUST only occur
// together as CRLF"; 4.1.1.4 defines the end of DATA as CRLF "." CRLF only.
// Accepting bare line endings is what makes SMTP smuggling (CVE-2023-51764
// family) possible: a downstream MTA may read "\n.\n" as the end of the data.
//
// Return it unwrapped from Session.Data: go-smtp picks the reply with a type
// assertion (conn.go, dataErrorToStatus), not errors.As, so a wrapped error
// would become "554 5.0.0 Error: transaction failed: ..." with our text in it.
var ErrBareLineEnding = &gosmtp.SMTPError{
	Code:         500,
	EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
	Message:      "Bare CR or LF in message data is not allowed",
}

// ErrLineTooLong is the reply for message data with a line longer than
// smtp.max_line_length (CRLF included). RFC 5321 4.5.3.1.6 bounds a text
// line at 1000 octets and 4.5.3.1.10 names "500 Line too long" as the
// reply; like a bare line ending it breaks the line rules of the data, so
// it gets the same permanent 500 5.5.2 on DATA and BDAT alike, once, after
// draining (RFC 3030 2: BDAT data is still subject to the server's
// limits). A message that can never pass must not get a 4xx.
var ErrLineTooLong = &gosmtp.SMTPError{
	Code:         500,
	EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
	Message:      "Line too long in message data",
}

// ErrNULInData is the reply for message data that holds a NUL byte. NUL
// is binary data: RFC 2045 2.7 and 2.8 allow it neither in 7bit nor in
// 8bit (8BITMIME) data, RFC 5322 4.1 only in obsolete syntax that must not
// be generated, and BINARYMIME (RFC 3030 3), the one body type that
// carries it, is not offered (route.go). A downstream may cut a line or a
// header at a NUL, so what it reads could differ from what the proxy
// rewrote and scanned. Same reply and same drain as a bare line ending, for DATA and
// BDAT alike (DESIGN.md invariant 5). Return it unwrapped, as
// ErrBareLineEnding.
var ErrNULInData = &gosmtp.SMTPError{
	Code:         500,
	EnhancedCode: gosmtp.EnhancedCode{5, 5, 2},
	Message:      "NUL in message data is not allowed",
}

// strictBufSize is the size of one read from the wrapped reader. go-smtp
// hands DATA through a bufio.Reader of 4 KiB; matching it keeps reads cheap.
const strictBufSize = 4096

// StrictData wraps the reader that go-smtp passes to Session.Data and refuses
// bare CR, bare LF and NUL, for DATA and BDAT alike.
//
// Why here, on the Session.Data reader, and not on the net.Conn: go-smtp
// v0.25.x does not rewrite line endings. Its DATA reader (data.go,
// dataReader.Read, "taken from net/textproto with only one modification to not
// rewrite CRLF -> LF") only removes the dot-stuffing dot and stops at
// CRLF "." CRLF; a bare LF or bare CR reaches Session.Data byte for byte (and
// a bare LF never counts as a line end, so "\n.\n" does not end the data:
// go-smtp PR #246, TestServer_smtpSmuggling, which accepts such a message
// with 250). BDAT chunks (conn.go, handleBdat) are copied unchanged from the
// connection into an io.Pipe whose reader is the Session.Data argument. So the
// session sees the bytes it has to judge, and go-smtp has no strict option
// (issue #243). A net.Conn wrapper could not work anyway: after STARTTLS
// (conn.go, handleStartTLS) go-smtp wraps the conn in tls.Server itself, so a
// wrapper below it sees only ciphertext.
//
// Only the dot-stuffing dot is removed from DATA before the session sees
// it: the carried go-smtp (third_party/go-smtp, PATCHES.md 2) keeps the CR
// of a line starting "." CR, which upstream drops ("\r\n.\rX" reached the
// session as "\r\nX"), so that sequence is refused here as it is in BDAT
// (issue 18 item 9). A removed dot is always followed by a byte the session
// sees (or it ends the data), so no byte this check refuses can hide
// behind one.
//
// When a bare CR or LF or a NUL is found, Read first drains the wrapped reader to its
// end (the final dot for DATA, the LAST chunk for BDAT) and only then returns
// ErrBareLineEnding. The client is then answered after all of its data, as
// in chasquid's readUntilDot and mox's DataReader, so the reply matches the
// transaction and the next command is read as a command (RFC 5321 4.1.1.4:
// the reply comes after the end of mail data indication). go-smtp also drains
// after Data returns, but for BDAT that would answer the chunk with the error
// and every later chunk with 502, so StrictData drains itself.
//
// Read never returns a bad byte and holds back a trailing CR until it has
// seen the LF after it, so the bytes it returns can be streamed downstream
// as they come. The caller must still abort the downstream transaction (no
// final dot) on any error from Read, because earlier bytes were already sent.
type StrictData struct {
	r       io.Reader
	maxLine int    // longest line allowed, CRLF included; 0: no limit
	lineLen int    // bytes of the current line passed so far
	buf     []byte // buf[0] holds back a CR; the wrapped reader fills buf[1:]
	out     []byte // checked bytes not yet returned
	held    bool   // the last byte read was a CR whose LF is still unknown
	err     error  // sticky: the error to return once out is empty
}

// NewStrictData returns a StrictData reading from r, the reader go-smtp passes
// to Session.Data.
func NewStrictData(r io.Reader) *StrictData {
	return &StrictData{r: r}
}

// NewStrictDataMaxLine is NewStrictData that also refuses, with
// ErrLineTooLong after draining, a line longer than maxLine bytes (CRLF
// included). go-smtp's own line limit is lifted during DATA (see
// third_party/go-smtp/PATCHES.md) and was never applied to BDAT, so this is
// the one line limit on message data.
func NewStrictDataMaxLine(r io.Reader, maxLine int) *StrictData {
	return &StrictData{r: r, maxLine: maxLine}
}

// Read implements io.Reader. It returns io.EOF only after clean data, and
// ErrBareLineEnding, ErrNULInData or ErrLineTooLong after the wrapped
// reader has been drained to io.EOF.
// Other errors from the wrapped reader (gosmtp.ErrDataTooLarge,
// gosmtp.ErrDataReset, I/O errors) are passed on.
func (s *StrictData) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(s.out) == 0 && s.err == nil {
		s.fill()
	}
	if len(s.out) > 0 {
		n := copy(p, s.out)
		s.out = s.out[n:]
		return n, nil
	}
	return 0, s.err
}

// fill reads once from the wrapped reader and moves the bytes it can vouch
// for to s.out, or sets s.err.
func (s *StrictData) fill() {
	if s.buf == nil {
		s.buf = *strictBufs.Get().(*[]byte)
	}
	n, err := s.r.Read(s.buf[1:])
	start := 1
	if s.held {
		// Put the held CR back in front, so the check sees it next to the
		// byte that follows it.
		s.buf[0] = '\r'
		start = 0
	}
	chunk := s.buf[start : 1+n]
	ok, held, bad := checkLineEndings(chunk)
	if bad {
		s.out, s.held = nil, false
		s.err = s.drainAfterBad(err, ErrBareLineEnding)
		return
	}
	if bytes.IndexByte(chunk, 0) >= 0 {
		s.out, s.held = nil, false
		s.err = s.drainAfterBad(err, ErrNULInData)
		return
	}
	if s.lineOverLimit(s.buf[1 : 1+n]) { // the new bytes only: a held CR was counted when read
		s.out, s.held = nil, false
		s.err = s.drainAfterBad(err, ErrLineTooLong)
		return
	}
	s.out, s.held = chunk[:ok], held
	switch {
	case err == io.EOF && s.held:
		// The data ends in a CR: a bare CR.
		s.out = nil
		s.err = ErrBareLineEnding
	case err != nil:
		s.err = err
	}
}

// strictBufs recycles StrictData's buffers: a fresh 4 KiB per message cost
// its allocation and zeroing.
var strictBufs = sync.Pool{New: func() any { b := make([]byte, 1+strictBufSize); return &b }}

// release gives the buffer back for the next message. The session calls it
// once nothing reads s any more; a Read after it starts with a new buffer.
func (s *StrictData) release() {
	if s.buf != nil {
		b := s.buf
		s.buf, s.out = nil, nil
		strictBufs.Put(&b)
	}
}

// lineOverLimit adds the bytes just read, whose line endings are already
// checked, to the current line's length and reports whether a line is
// longer than maxLine.
func (s *StrictData) lineOverLimit(chunk []byte) bool {
	if s.maxLine <= 0 {
		return false
	}
	for {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.lineLen += len(chunk)
			return s.lineLen > s.maxLine
		}
		if s.lineLen+i+1 > s.maxLine {
			return true
		}
		s.lineLen, chunk = 0, chunk[i+1:]
	}
}

// drainAfterBad consumes the rest of the data so that the reply comes after
// it, and returns the error Read must report: refusal once the data ended.
// err is the error of the read that brought the bad byte.
func (s *StrictData) drainAfterBad(err error, refusal error) error {
	for err == nil {
		_, err = s.r.Read(s.buf) // the checked bytes in buf are no longer needed
	}
	if errors.Is(err, io.EOF) {
		return refusal
	}
	// Too large, reset (RSET during BDAT) or a broken connection: that error
	// decides the transaction's fate, and go-smtp's own handling of it keeps
	// the session in sync.
	return err
}

// checkLineEndings reports whether chunk holds a bare CR or LF. Every LF must
// follow a CR and every CR must precede an LF (RFC 5321 2.3.8). A CR in the
// last byte cannot be judged yet: ok excludes it and held is true. chunk
// starts with the CR held from the previous call, if any.
//
// It searches with the vectorised bytes.IndexByte and bytes.Count rather
// than looking at each byte: when every LF follows a CR, each LF has its
// own CR, so the CRs are all in pairs exactly when there are as many CRs
// as LFs.
func checkLineEndings(chunk []byte) (ok int, held, bad bool) {
	n := len(chunk)
	if n > 0 && chunk[n-1] == '\r' {
		n, held = n-1, true
	}
	body := chunk[:n]
	lfs := 0
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			break
		}
		if i+j == 0 || body[i+j-1] != '\r' {
			return 0, false, true
		}
		lfs++
		i += j + 1
	}
	if bytes.Count(body, crByte) != lfs {
		return 0, false, true
	}
	return n, held, false
}

var crByte = []byte{'\r'}
