package downstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	gosmtp "github.com/emersion/go-smtp"
)

// ErrNoSMTPUTF8: the envelope or the header needs SMTPUTF8 (RFC 6531) and
// the next hop does not offer it. It is permanent: retrying for days
// changes nothing, the sender gets a bounce now (553 5.6.7, RFC 6531 §3.6.2
// and RFC 3463's X.6.7 as updated by RFC 6533).
var ErrNoSMTPUTF8 = errors.New("next hop does not offer SMTPUTF8")

// errAgainUTF8: MAIL could not be sent again with SMTPUTF8 (intl.go).
var errAgainUTF8 = errors.New("downstream transaction could not be restarted with SMTPUTF8")

// noSMTPUTF8 is the permanent failure of a stage that needs SMTPUTF8. It
// carries the code the session answers (553 5.6.7): a reply concerning
// this recipient or message only, so the session goes on.
func noSMTPUTF8(stage string) *Error {
	return &Error{Code: 553, Enhanced: gosmtp.EnhancedCode{5, 6, 7}, Stage: stage, Kind: ErrPerm, Err: ErrNoSMTPUTF8}
}

// needsUTF8 reports whether s has a byte outside ASCII: a mailbox or a
// header that only SMTPUTF8 carries (RFC 6531 §3.3, RFC 6532 §3).
func needsUTF8(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// wantUTF8 decides SMTPUTF8 for the first MAIL: needed by the sender or
// the first recipient, or declared by the client (its header likely needs
// it, which saves a second MAIL at DATA) when the hop offers it. A client's
// declaration alone never fails a transaction: what the rewritten message
// needs decides (Rcpt, prepareBody).
func (t *Txn) wantUTF8(to string) bool {
	if !t.dc.w.has("SMTPUTF8") {
		return false
	}
	return needsUTF8(t.from) || needsUTF8(to) || (t.opts != nil && t.opts.UTF8)
}

// againUTF8 restarts the downstream transaction with SMTPUTF8, on the same
// connection, when MAIL went without it and a recipient or the header now
// needs it: RSET (RFC 5321 §4.1.1.5), MAIL with SMTPUTF8, the recipients
// accepted so far, and then to unless it is "". A recipient refused now that
// was accepted before leaves the transaction unusable: its error has no
// code, so the session starts over (temporary).
func (t *Txn) againUTF8(to string) error {
	w := t.dc.w
	if err := w.reset(); err != nil {
		return err
	}
	rcpts := t.rcpts
	if to != "" {
		rcpts = append(rcpts[:len(rcpts):len(rcpts)], to)
	}
	t.utf8 = true
	mailErr, rcptErr := w.mailRcpt(t.from, t.opts, true, rcpts[0])
	if mailErr != nil {
		return againFailed(mailErr)
	}
	for i, r := range rcpts {
		if i > 0 {
			rcptErr = w.rcpt(r)
		}
		if rcptErr == nil {
			continue
		}
		if r == to && i == len(rcpts)-1 {
			return rcptErr // the new recipient's own refusal: as any RCPT's
		}
		return againFailed(rcptErr)
	}
	return nil
}

// againFailed is againUTF8's failure: errAgainUTF8 with the reply's code
// but not its text (it may name an address), and no *gosmtp.SMTPError in
// the chain, so that it reads as the transaction's end, not as a reply
// about one recipient.
func againFailed(err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: reply %d", errAgainUTF8, se.Code)
	}
	return fmt.Errorf("%w: %w", errAgainUTF8, err)
}

// headReaders recycle prepareBody's readers.
var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headPeek) }}

// headPeek is how much of a message is looked at without reading it all:
// a header section longer than this makes the whole message read first.
const headPeek = 64 << 10

// prepareBody looks at the rewritten message, read through br, before
// DATA: a header with UTF-8 needs SMTPUTF8 (restarting MAIL with it, or
// ErrNoSMTPUTF8), and an 8-bit body to a hop without 8BITMIME is converted
// or refused (eightbit.go). It returns the reader DATA sends and, on
// failure, an error for Data to return (the transaction has then ended).
func (t *Txn) prepareBody(ctx context.Context, br *bufio.Reader) (io.Reader, error) {
	head, whole, err := peekHead(br)
	if err != nil {
		t.Abort()
		return nil, err // the client's data failed: as Data's stream
	}
	var out io.Reader = br
	if whole != nil {
		out = bytes.NewReader(whole)
	}
	if (has8bit(head) || t.partUTF8) && !t.utf8 {
		if err := t.headerUTF8(ctx); err != nil {
			return nil, err
		}
	}
	if !t.utf8 && !t.dc.w.has("8BITMIME") {
		return t.sevenBit(out)
	}
	return out, nil
}

// headReader is a pooled reader for prepareBody over body; putHeadReader
// gives it back once the message is sent.
func headReader(body io.Reader) *bufio.Reader {
	br := headReaders.Get().(*bufio.Reader)
	br.Reset(body)
	return br
}

func putHeadReader(br *bufio.Reader) {
	br.Reset(nil)
	headReaders.Put(br)
}

// headerUTF8 restarts MAIL with SMTPUTF8 for a header that needs it, or
// fails the transaction with ErrNoSMTPUTF8.
func (t *Txn) headerUTF8(ctx context.Context) error {
	if !t.dc.w.has("SMTPUTF8") {
		return t.fail(noSMTPUTF8("data"))
	}
	g := t.dc.guard(ctx)
	if err := firedErr(g.end(), t.againUTF8("")); err != nil {
		return t.fail(&Error{Stage: "data", Kind: ErrTemp, Err: err})
	}
	return nil
}

// peekHead returns the header section (up to and with its empty line) of
// the message br reads, without consuming it. A header longer than the
// buffer makes it read the whole message: whole is then the message.
func peekHead(br *bufio.Reader) (head, whole []byte, err error) {
	for n := 1; ; n = br.Buffered() + 1 {
		b, err := br.Peek(min(n, headPeek))
		if i := headerEnd(b); i >= 0 {
			return b[:i], nil, nil
		}
		switch {
		case errors.Is(err, io.EOF):
			return b, nil, nil // a message without a body
		case errors.Is(err, bufio.ErrBufferFull) || len(b) == headPeek:
			whole, err := io.ReadAll(br)
			if err != nil {
				return nil, nil, err
			}
			if i := headerEnd(whole); i >= 0 {
				return whole[:i], whole, nil
			}
			return whole, whole, nil
		case err != nil:
			return nil, nil, err
		}
	}
}

// headerEnd is the length of the header section with its empty line, or
// -1 when b does not hold all of it. A message starting with an empty
// line has an empty header.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// Precheck tells, before the caller commits to the message (the inbound
// route makes its new tokens durable), whether this hop can take it, so
// that a refusal leaves nothing behind (DESIGN.md invariant 4). msg is the
// rewritten message, or its start when complete is false (WholeFirst says
// when the answer needs all of it). It sends nothing; the failures are
// Data's: ErrNoSMTPUTF8 for a header (the message's, or a MIME part's
// reported by PartHeadersUTF8) that needs SMTPUTF8 the hop lacks,
// ErrNo8BitMIME for an 8-bit body that policy refuses or that cannot be
// converted.
func (t *Txn) Precheck(msg []byte, complete bool) error {
	if t.Settled() {
		return nil
	}
	end := headerEnd(msg)
	if end < 0 {
		end = len(msg) // all header; when incomplete, Data checks the rest
	}
	if has8bit(msg[:end]) || t.partUTF8 {
		if !t.dc.w.has("SMTPUTF8") {
			return noSMTPUTF8("data")
		}
		return nil // MAIL goes again with SMTPUTF8, and the body as it is
	}
	if !complete || t.dc.w.has("8BITMIME") || !has8bit(msg[end:]) {
		return nil
	}
	if t.d.cfg.EightBit == EightBitRefuse {
		return no8BitMIME(nil)
	}
	// The conversion Data will make: one it cannot make is refused now.
	if _, err := ToSevenBit(msg); err != nil {
		return no8BitMIME(err)
	}
	return nil
}

// Settled reports that Precheck can no longer refuse the message: the
// transaction is over, has not begun, or MAIL went with SMTPUTF8 (which
// carries any header, and 8-bit bodies with it). A caller skips reading
// the message for a Precheck then.
func (t *Txn) Settled() bool { return t.done || !t.mailed || t.utf8 }

// WholeFirst reports whether this hop's answer depends on the whole
// message: it lacks 8BITMIME and MAIL went without SMTPUTF8, so Data reads
// the whole message before its first byte goes out anyway, to convert an
// 8-bit body or refuse it (sevenBit). A caller that commits to the message
// before Data ends then holds it and Prechecks it complete; to a hop that
// offers 8BITMIME (most) it streams.
func (t *Txn) WholeFirst() bool {
	return !t.done && t.mailed && !t.utf8 && !t.dc.w.has("8BITMIME")
}

// PartHeadersUTF8 tells the transaction that a header section of the
// message, maybe a MIME part's that Data's look at the message header does
// not see, carries UTF-8 (the rewriter's Report.HeaderUTF8). Such a
// message is internationalized (RFC 6532 §3.3, and §3.5 for MIME part
// headers): it goes with SMTPUTF8 (MAIL is sent again with it) or, to a
// hop without, not at all (553 5.6.7, from Precheck and Data). Without
// SMTPUTF8, 8BITMIME carries 8-bit body lines only (RFC 6152); header
// fields, a part's included, stay ASCII (RFC 2045 §3, RFC 2047, RFC 2231).
func (t *Txn) PartHeadersUTF8() { t.partUTF8 = true }

// UTF8Refusal is the error a message needing SMTPUTF8 gets on this
// transaction, nil when MAIL went with SMTPUTF8 or the hop offers it. A
// caller streaming the message asks before Data starts (the transaction
// is Data's then) and refuses such a message, found as it streams,
// before the final dot. Where the hop offers SMTPUTF8 and MAIL went
// without, a streamed message goes on as it is: MAIL cannot be sent
// again once DATA has begun.
func (t *Txn) UTF8Refusal() error {
	if t.done || !t.mailed || t.utf8 || t.dc.w.has("SMTPUTF8") {
		return nil
	}
	return noSMTPUTF8("data")
}
