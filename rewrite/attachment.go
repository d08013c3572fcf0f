package rewrite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/attach"
)

// attachment handles a part that is neither text, multipart nor message:
// office documents and archives are opened and rewritten (rewrite/attach),
// and every kind follows the attachment policy inbound (Options.
// Attachments): rewrite, strip (the part becomes a short notice), refuse,
// or pass. A part with nothing to replace is written byte for byte.
func (w *walker) attachment(h *mimeHeader, mt string, params map[string]string, cte string, depth int) error {
	if isSignaturePart(mt) {
		// A signed message's signature (RFC 8551 section 3.5.3, RFC
		// 3156 section 5): it must reach the CRM as it is, and is no
		// attachment a person opens.
		if err := w.writeHeader(h); err != nil {
			return err
		}
		return w.rawBody(false)
	}
	ar := w.attachRewriter(depth)
	pi := partInfo{name: fileName(h, params), cte: cte, max: ar.Limits().MaxBytes}
	kind := attach.Classify(mt, pi.name)
	var raw []byte
	if kind == attach.KindUnknown {
		// A generic type (application/octet-stream): the first bytes
		// decide whether the part is collected at all.
		head, _, err := w.collectAttachment(nil, sniffBytes)
		if err != nil {
			return err
		}
		decoded, _ := decodeAttachment(cte, head)
		raw, kind = head, attach.Sniff(decoded)
		if tmt, ok := sniffText(pi.name, decoded); ok && (kind == attach.KindText || kind == attach.KindUnreadable) {
			// Text by its content and name (UTF-16 too, which the
			// attachment sniffer calls unreadable) is the text
			// reader's (sniff.go).
			return w.sniffedText(h, params, cte, depth, tmt, raw)
		}
	}
	if kind == attach.KindPDF {
		return w.pdfPart(h, ar, raw, pi) // read, never rewritten (pdfpart.go)
	}
	if kind == attach.KindMedia || kind == attach.KindUnreadable {
		act, err := ar.Verdict(kind)
		if err != nil {
			return attachErr(err)
		}
		return w.unopened(h, raw, act, kind, pi)
	}
	return w.opened(h, ar, kind, raw, pi)
}

// attachRewriter is the attachment rewriter of this pass. Saved messages
// in archives are walked as attached ones are; the closure holds a copy
// of the walker's state, not w: a w that escaped would cost every message
// a heap walker, attachment or not.
func (w *walker) attachRewriter(depth int) *attach.Rewriter {
	msgs := &walker{ctx: w.ctx, out: w.out, d: w.d, rep: w.rep, limits: w.limits}
	pdfNames := w.d.names // inbound: finds a customer address, tokenizing nothing
	if w.d.guard {
		pdfNames = w.d.addr
	}
	return attach.New(attach.Options{Policy: *w.d.attachments, Enforce: w.d.enforce, Addr: w.d.addr, PDF: pdfNames,
		Message: func(ctx context.Context, msg []byte) ([]byte, bool, error) {
			return msgs.rewriteBody("message/rfc822", msg, depth)
		}})
}

// opened collects and decodes a part that can be read (office documents,
// archives), hands it to the attachment rewriter and writes what it made
// of it: the part as it was, re-encoded, or a notice.
func (w *walker) opened(h *mimeHeader, ar *attach.Rewriter, kind attach.Kind, raw []byte, pi partInfo) error {
	raw, complete, err := w.collectAttachment(raw, rawSize(pi.max))
	if err != nil {
		return err
	}
	content, err := decodeAttachment(pi.cte, raw)
	if !complete || err != nil {
		act, err := ar.Unopened()
		if err != nil {
			return attachErr(err)
		}
		return w.unopened(h, raw, act, attach.KindUnreadable, pi)
	}
	// The raw and decoded bytes, then the expansion as the attachment is
	// opened, count against the route's held-part budget: so the memory
	// of opened attachments is bounded in total (hold.go).
	hold, err := w.holdAttachment(len(raw) + len(content))
	if err != nil {
		return err
	}
	res, err := ar.PartHeld(w.ctx, kind, pi.name, content, hold.reserve)
	w.endHold(hold)
	if err != nil {
		return attachErr(err)
	}
	switch {
	case res.Action == attach.Strip:
		return w.writeNotice(h, pi.name, content, res.Kind)
	case res.Action == attach.Pass:
		if err := w.d.scanRaw(raw); err != nil {
			return err
		}
		return w.writeHeaderAnd(h, raw)
	case !res.Changed || w.out == nil:
		return w.writeHeaderAnd(h, raw)
	}
	w.rep.Changed++
	cte := strings.TrimSpace(pi.cte)
	if cte != "base64" {
		// Binary content in any other encoding would not survive it.
		h.set("Content-Transfer-Encoding", "content-transfer-encoding", "base64")
		cte = "base64"
	}
	return w.writeHeaderAnd(h, encodeCTE(h, cte, res.Data, w.lr.eol(), true))
}

func isSignaturePart(mt string) bool {
	switch mt {
	case "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature":
		return true
	}
	return false
}

// unopened writes a part that is not opened by its action: pass streams it
// as today (raw, already collected first), strip replaces it and keeps
// its content for the quarantine. A part too large to keep (over
// attachment max_bytes) is refused rather than lost.
func (w *walker) unopened(h *mimeHeader, raw []byte, act attach.Action, kind attach.Kind, pi partInfo) error {
	if act == attach.Strip {
		raw, complete, err := w.collectAttachment(raw, rawSize(pi.max))
		if err != nil {
			return err
		}
		content, err := decodeAttachment(pi.cte, raw)
		if !complete || err != nil {
			return fmt.Errorf("%w: an attachment to strip is too large or undecodable to keep", ErrLimit)
		}
		return w.writeNotice(h, pi.name, content, kind)
	}
	if err := w.d.scanRaw(raw); err != nil {
		return err
	}
	if err := w.writeHeaderAnd(h, raw); err != nil {
		return err
	}
	return w.rawBody(false)
}

// partInfo is what unopened needs of a part to keep it.
type partInfo struct {
	name, cte string
	max       int64 // attachment max_bytes
}

// attachErr maps the attachment rewriter's refusals to the rewriter's
// sentinels, which the routes answer: a policy refusal or unreadable
// content as unscannable (554 5.6.0), a bomb as a limit (552).
func attachErr(err error) error {
	switch {
	case errors.Is(err, attach.ErrRefused):
		return fmt.Errorf("%w: %w", ErrUnscannable, err)
	case errors.Is(err, attach.ErrLimit):
		return fmt.Errorf("%w: %w", ErrLimit, err)
	}
	return err
}

// decodeAttachment undoes the transfer encoding of an attachment. Well
// formed base64 (lines of the alphabet, padding at the end) is decoded
// with its line ends cut out, several times faster than the lenient
// decoder, which takes whatever else comes.
func decodeAttachment(cte string, raw []byte) ([]byte, error) {
	if strings.TrimSpace(cte) != "base64" {
		return decodeCTE(cte, raw)
	}
	joined := make([]byte, 0, len(raw))
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		joined = append(joined, bytes.TrimRight(line, "\r")...)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(joined)))
	if n, err := base64.StdEncoding.Decode(out, joined); err == nil {
		return out[:n], nil
	}
	return decodeCTE(cte, raw)
}

// sniffBytes is how much of a generic part's raw body is read to sniff
// its kind: enough base64 for a tar header's magic at offset 257.
const sniffBytes = 1024

// rawSize is the raw size of max decoded bytes in base64 with line ends.
func rawSize(max int64) int64 { return max/3*4 + max/38 + 4096 }

// collectAttachment reads a body on from raw up to the next delimiter
// while it fits in limit raw bytes; complete is false when it does not,
// and the rest is left unread.
func (w *walker) collectAttachment(raw []byte, limit int64) ([]byte, bool, error) {
	w.releaseHeld() // the previous part is written; raw is counted anew
	if err := w.reserveHeld(cap(raw)); err != nil {
		return nil, false, err
	}
	for int64(len(raw)) <= limit {
		l, err := w.lr.next()
		if err != nil {
			return raw, true, eofOK(err)
		}
		if l.delim >= 0 {
			return raw, true, nil
		}
		if len(raw)+len(l.b) > cap(raw) {
			// Doubling: append grows large slices by a quarter, which
			// copies a 16 MiB attachment some forty times.
			raw = append(make([]byte, 0, max(2*cap(raw), len(raw)+len(l.b), 64<<10)), raw...)
			if err := w.reserveHeld(cap(raw)); err != nil {
				return nil, false, err
			}
		}
		raw = append(raw, l.b...)
	}
	return raw, false, nil
}

// fileName is the part's file name, from Content-Disposition or the
// Content-Type name parameter (RFC 2183, RFC 2231 decoded), as rewritten:
// an address in it is already a token.
func fileName(h *mimeHeader, params map[string]string) string {
	for i := range h.fields {
		f := &h.fields[i]
		if !strings.EqualFold(h.name(f), "content-disposition") {
			continue
		}
		v := h.rawValue(f)
		if f.changed {
			v = f.value
		}
		if _, p, err := mime.ParseMediaType(v); err == nil && p["filename"] != "" {
			return p["filename"]
		}
	}
	return params["name"]
}

// Stripped is an attachment the policy replaced by a notice: what the
// quarantine keeps once the message passed (Report.Quarantine).
type Stripped struct {
	Ref     string // in the notice and the log line
	Kind    string
	Name    string // the file name as the CRM saw it (addresses are tokens)
	Content []byte // decoded
}

// writeNotice replaces a stripped part by a short text/plain notice: the
// file name (its addresses already tokens), kind, size and the reference
// under which the quarantine keeps the original.
func (w *walker) writeNotice(h *mimeHeader, name string, content []byte, kind attach.Kind) error {
	ref := noticeRef()
	w.rep.Stripped = append(w.rep.Stripped, ref)
	w.rep.Quarantine = append(w.rep.Quarantine, Stripped{Ref: ref, Kind: kind.String(), Name: name,
		Content: content}) // freshly decoded: not shared with a buffer
	w.rep.Changed++
	if w.out == nil {
		return nil
	}
	eol := w.lr.eol()
	var b bytes.Buffer
	b.WriteString("This attachment was removed by the mail proxy's attachment policy." + eol)
	b.WriteString("The compliance team keeps the original under the reference below." + eol)
	if name != "" {
		b.WriteString("File: " + name + eol)
	}
	b.WriteString("Kind: " + kind.String() + eol)
	fmt.Fprintf(&b, "Size: %d bytes%s", len(content), eol)
	b.WriteString("Reference: " + ref + eol)
	cte := "7bit"
	body := b.Bytes()
	if !isASCII(b.String()) {
		cte = "quoted-printable"
		body = encodeCTE(h, cte, body, eol, true)
	}
	h.set("Content-Type", "content-type", "text/plain; charset=utf-8")
	h.set("Content-Transfer-Encoding", "content-transfer-encoding", cte)
	for i := range h.fields {
		if f := &h.fields[i]; strings.EqualFold(h.name(f), "content-disposition") {
			f.value, f.changed = mime.FormatMediaType("attachment", map[string]string{"filename": "removed-" + ref + ".txt"}), true
		}
	}
	return w.writeHeaderAnd(h, body)
}

// noticeRef is a random reference for a stripped part.
func noticeRef() string {
	var b [10]byte
	rand.Read(b[:])
	return "att-" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}
