package smtp

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/tokenproxy/tokenproxy/internal/rawheader"
	"github.com/tokenproxy/tokenproxy/rewrite/header"
)

// senderFields are the top-level fields that say who the reply is from
// and where answers go (RFC 5322 §3.6.2). On the outbound route they must
// name the company, never the CRM: a customer's answer to the CRM's own
// address would bypass the inbound route and reach the vendor with the
// customer's real address.
var senderFields = map[string]bool{"from": true, "sender": true, "reply-to": true}

// errHeaderTooLarge: the top-level header did not end within the limit.
var errHeaderTooLarge = errors.New("smtp: header section exceeds the limit")

// senderRewriter holds back the top-level header section of the message
// written to it, rewrites its sender fields with fn, and passes the rest
// through unchanged. The body is never buffered.
type senderRewriter struct {
	dst  io.Writer
	fn   fieldMailboxFunc
	max  int
	buf  []byte
	done bool // header written; the rest streams
	// msgIDHash is the hashed Message-ID, for the audit record.
	msgIDHash string
}

// fieldMailboxFunc returns the rewrite of one sender field, by its
// lower-case name.
type fieldMailboxFunc func(field string) header.MailboxFunc

func newSenderRewriter(dst io.Writer, max int, fn fieldMailboxFunc) *senderRewriter {
	return &senderRewriter{dst: dst, fn: fn, max: max}
}

func (w *senderRewriter) Write(p []byte) (int, error) {
	if w.done {
		return w.dst.Write(p)
	}
	w.buf = append(w.buf, p...)
	end := headerEnd(w.buf)
	if end < 0 {
		if len(w.buf) > w.max {
			return 0, errHeaderTooLarge
		}
		return len(p), nil
	}
	if err := w.flush(end); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes a message that had no body (header section only).
func (w *senderRewriter) Close() error {
	if w.done {
		return nil
	}
	return w.flush(len(w.buf))
}

// flush rewrites buf[:end] (the header with its blank line) and writes it
// with whatever followed.
func (w *senderRewriter) flush(end int) error {
	w.done = true
	hdr, msgIDHash, err := rewriteSenderFields(w.buf[:end], w.fn)
	w.msgIDHash = msgIDHash
	if err != nil {
		return err
	}
	if _, err := w.dst.Write(hdr); err != nil {
		return err
	}
	rest := w.buf[end:]
	w.buf = nil
	if len(rest) > 0 {
		_, err = w.dst.Write(rest)
	}
	return err
}

// headerEnd returns the offset just after the blank line ending the
// header section, or -1. A message starting with CRLF has no header.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// rewriteSenderFields rewrites the sender fields of a CRLF header section;
// every other field keeps its bytes and place. It also returns the hashed
// Message-ID for the audit record, from the same pass over the fields.
func rewriteSenderFields(hdr []byte, fn fieldMailboxFunc) (out []byte, msgIDHash string, err error) {
	for {
		field, rest, ok := rawheader.Next(hdr)
		if !ok {
			return append(out, hdr...), msgIDHash, nil // the empty line
		}
		hdr = rest
		colon := bytes.IndexByte(field, ':')
		name := ""
		if colon >= 0 {
			name = strings.ToLower(string(bytes.TrimSpace(field[:colon])))
		}
		if name == "message-id" && msgIDHash == "" {
			msgIDHash = hashMessageID(field[colon+1:])
		}
		if !senderFields[name] {
			out = append(out, field...)
			continue
		}
		value := strings.TrimRight(string(field[colon+1:]), "\r\n")
		v, changed, err := header.RewriteAddressField(value, fn(name))
		if err != nil {
			return nil, "", err
		}
		if !changed {
			out = append(out, field...)
			continue
		}
		out = append(out, field[:colon+1]...)
		out = append(out, foldAddressList(v)...)
		out = append(out, "\r\n"...)
	}
}

// foldAddressList keeps a rewritten field within 998 octets a line
// (RFC 5322 §2.1.1) by folding after the commas between addresses.
func foldAddressList(v string) string {
	if len(v) <= 900 {
		return v
	}
	return strings.ReplaceAll(v, ", ", ",\r\n ")
}
