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
// break, as RFC 6152 §3 warns.
func ToSevenBit(msg []byte) ([]byte, error) {
	h, body, err := readEntity(msg)
	if err != nil {
		return nil, err
	}
	if !h.Has("Mime-Version") {
		h.Set("MIME-Version", "1.0")
	}
	var out bytes.Buffer
	if err := sevenBitEntity(&out, h, body, 0); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// readEntity splits an entity into its header and body.
func readEntity(b []byte) (textproto.Header, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	rest, _ := io.ReadAll(br)
	return h, rest, nil
}

// sevenBitEntity writes one entity, header and body, converted.
func sevenBitEntity(w *bytes.Buffer, h textproto.Header, body []byte, depth int) error {
	if depth > maxMIMEDepth {
		return errors.New("MIME nesting too deep")
	}
	if err := checkHeader7bit(h); err != nil {
		return err
	}
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		return sevenBitMultipart(w, h, body, params["boundary"], depth)
	case mt == "message/rfc822" && has8bit(body):
		ih, ibody, err := readEntity(body)
		if err != nil {
			return err
		}
		var inner bytes.Buffer
		if err := sevenBitEntity(&inner, ih, ibody, depth+1); err != nil {
			return err
		}
		// RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary only.
		setCTE(&h, "7bit")
		return writeEntity(w, h, inner.Bytes())
	case !has8bit(body):
		return writeEntity(w, h, body)
	}
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "", "7bit", "8bit", "binary":
	default:
		return fmt.Errorf("8-bit octets in a %s part", cte)
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
	var enc bytes.Buffer
	qp := quotedprintable.NewWriter(&enc)
	if _, err := qp.Write(body); err != nil {
		return err
	}
	if err := qp.Close(); err != nil {
		return err
	}
	return writeEntity(w, h, enc.Bytes())
}

// sevenBitMultipart converts each part and writes them with the same
// boundary (RFC 2046 §5.1.1).
func sevenBitMultipart(w *bytes.Buffer, h textproto.Header, body []byte, boundary string, depth int) error {
	mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
	var parts bytes.Buffer
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("multipart: %w", err)
		}
		pb, err := io.ReadAll(p)
		if err != nil {
			return fmt.Errorf("multipart: %w", err)
		}
		parts.WriteString("--" + boundary + "\r\n")
		if err := sevenBitEntity(&parts, p.Header, pb, depth+1); err != nil {
			return err
		}
		parts.WriteString("\r\n")
	}
	parts.WriteString("--" + boundary + "--\r\n")
	// RFC 2045 §6.4: a multipart entity's encoding is its parts'; they are
	// 7-bit now.
	if h.Has("Content-Transfer-Encoding") {
		setCTE(&h, "7bit")
	}
	return writeEntity(w, h, parts.Bytes())
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
