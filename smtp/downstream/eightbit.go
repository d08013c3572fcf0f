package downstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
	gosmtp "github.com/emersion/go-smtp"
)

// What an 8-bit body does to a hop without 8BITMIME (Config.EightBit).
const (
	EightBitConvert = "convert" // re-encode each 8-bit part as quoted-printable
	EightBitRefuse  = "refuse"  // refuse the message permanently
)

// ErrNo8BitMIME: an 8-bit body for a hop that does not offer 8BITMIME
// (RFC 6152 §3), refused by policy or not convertible: 554 5.6.3
// (RFC 3463: conversion required but not supported). Permanent.
var ErrNo8BitMIME = errors.New("next hop does not offer 8BITMIME")

// maxMIMEDepth bounds the nesting converted: deeper is refused, not
// recursed into without end.
const maxMIMEDepth = 20

func checkEightBit(cfg *Config) error {
	switch cfg.EightBit {
	case "":
		cfg.EightBit = EightBitConvert
	case EightBitConvert, EightBitRefuse:
	default:
		return fmt.Errorf("downstream eight_bit %q: want %q or %q", cfg.EightBit, EightBitConvert, EightBitRefuse)
	}
	return nil
}

// sevenBit makes the message fit a hop without 8BITMIME: a message of
// 7-bit octets goes as it is; an 8-bit one is converted (RFC 6152 §3:
// the client converts or returns it) or refused by policy. It reads the
// whole message: only such hops pay for it.
func (t *Txn) sevenBit(body io.Reader) (io.Reader, error) {
	msg, err := io.ReadAll(body)
	if err != nil {
		t.Abort()
		return nil, err // the client's data failed: as Data's stream
	}
	if !has8bit(msg) {
		return bytes.NewReader(msg), nil
	}
	if t.d.cfg.EightBit == EightBitRefuse {
		return nil, t.fail(no8BitMIME(nil))
	}
	out, err := ToSevenBit(msg)
	if err != nil {
		return nil, t.fail(no8BitMIME(err))
	}
	t.d.log.Info("8-bit message converted to quoted-printable for a hop without 8BITMIME", "downstream", t.dc.h.label)
	return bytes.NewReader(out), nil
}

func no8BitMIME(cause error) *Error {
	err := ErrNo8BitMIME
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrNo8BitMIME, cause)
	}
	return &Error{Code: 554, Enhanced: gosmtp.EnhancedCode{5, 6, 3}, Stage: "data", Kind: ErrPerm, Err: err}
}

// ToSevenBit converts a message to 7-bit MIME (RFC 2045, RFC 6152 §3): each
// leaf part with 8-bit octets in its body is re-encoded as
// quoted-printable and its Content-Transfer-Encoding updated; multipart
// structure and boundaries are kept (the preamble and epilogue, which no
// reader shows, are dropped), message/rfc822 parts are converted inside.
// A header with 8-bit octets cannot be converted (only SMTPUTF8 carries
// it, RFC 6532) and neither can a part that claims base64 or
// quoted-printable but holds 8-bit octets. Signatures over converted parts
// break, as RFC 6152 §3 warns. Parts are read one at a time from the
// nested readers: nesting does not multiply the memory held.
func ToSevenBit(msg []byte) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if !h.Has("Mime-Version") {
		h.Set("MIME-Version", "1.0")
	}
	var out bytes.Buffer
	out.Grow(len(msg) + len(msg)/4)
	if err := sevenBitEntity(&out, h, br, 0); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// sevenBitEntity writes one entity, header and body, converted.
func sevenBitEntity(w *bytes.Buffer, h textproto.Header, body io.Reader, depth int) error {
	if depth > maxMIMEDepth {
		return errors.New("MIME nesting too deep")
	}
	if err := checkHeader7bit(h); err != nil {
		return err
	}
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		// RFC 2045 §6.4: a multipart entity's encoding is its parts';
		// they will be 7-bit.
		if h.Has("Content-Transfer-Encoding") {
			setCTE(&h, "7bit")
		}
		if err := textproto.WriteHeader(w, h); err != nil {
			return err
		}
		return sevenBitMultipart(w, body, params["boundary"], depth)
	case mt == "message/rfc822" && identityCTE(h):
		br := bufio.NewReader(body)
		ih, err := textproto.ReadHeader(br)
		if err != nil {
			return fmt.Errorf("message/rfc822 header: %w", err)
		}
		// RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary only.
		setCTE(&h, "7bit")
		if err := textproto.WriteHeader(w, h); err != nil {
			return err
		}
		return sevenBitEntity(w, ih, br, depth+1)
	}
	leaf, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	return sevenBitLeaf(w, h, leaf)
}

// sevenBitLeaf writes a leaf part: as it is when 7-bit, else
// quoted-printable.
func sevenBitLeaf(w *bytes.Buffer, h textproto.Header, body []byte) error {
	if !has8bit(body) {
		return writeEntity(w, h, body)
	}
	if !identityCTE(h) {
		return fmt.Errorf("8-bit octets in a %s part", h.Get("Content-Transfer-Encoding"))
	}
	if !h.Has("Content-Type") {
		// RFC 2045 §5.2 would read the part as us-ascii: name what it is.
		cs := "unknown-8bit" // RFC 1428
		if utf8.Valid(body) {
			cs = "utf-8"
		}
		h.Set("Content-Type", "text/plain; charset="+cs)
	}
	setCTE(&h, "quoted-printable")
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write(body); err != nil {
		return err
	}
	return qp.Close()
}

// sevenBitMultipart converts each part and writes them with the same
// boundary (RFC 2046 §5.1.1).
func sevenBitMultipart(w *bytes.Buffer, body io.Reader, boundary string, depth int) error {
	mr := textproto.NewMultipartReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("multipart: %w", err)
		}
		w.WriteString("--" + boundary + "\r\n")
		if err := sevenBitEntity(w, p.Header, p, depth+1); err != nil {
			return err
		}
		w.WriteString("\r\n")
	}
	w.WriteString("--" + boundary + "--\r\n")
	return nil
}

// identityCTE: the part's body is its content, not encoded (RFC 2045 §6.2:
// 7bit, 8bit, binary, or none said).
func identityCTE(h textproto.Header) bool {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

func setCTE(h *textproto.Header, cte string) { h.Set("Content-Transfer-Encoding", cte) }

// checkHeader7bit refuses a header with 8-bit octets: RFC 6532 fields
// travel only with SMTPUTF8, which a hop without 8BITMIME lacks.
func checkHeader7bit(h textproto.Header) error {
	for f := h.Fields(); f.Next(); {
		raw, err := f.Raw()
		if err != nil || has8bit(raw) {
			return errors.New("8-bit octets in a header")
		}
	}
	return nil
}

// writeEntity writes a header and a body.
func writeEntity(w *bytes.Buffer, h textproto.Header, body []byte) error {
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	w.Write(body)
	return nil
}
