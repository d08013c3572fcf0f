package mailauth

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"strings"
)

// The canonicalizations of DKIM (RFC 6376 §3.4), which ARC reuses for its
// signatures (RFC 8617 §4.1.2, §4.1.3). go-msgauth has them, but keeps them
// unexported, and its signer and verifier only know the DKIM-Signature
// field: an ARC-Message-Signature hashes itself under its own name, so
// neither can be reused whole. What is written here is only what ARC needs:
// header canonicalization of chosen fields, and a body hash.

const (
	canonSimple  = "simple"
	canonRelaxed = "relaxed"
)

// canonHeader canonicalizes one raw field (name, colon, value, line ends)
// by RFC 6376 §3.4.1 (simple: unchanged) or §3.4.2 (relaxed: name
// lower-cased, value unfolded, runs of white space made one space, white
// space around the colon and at the end removed). The result ends in CRLF.
func canonHeader(raw []byte, canon string) []byte {
	if canon == canonSimple {
		if !bytes.HasSuffix(raw, []byte("\r\n")) {
			return append(bytes.TrimSuffix(raw, []byte("\n")), '\r', '\n')
		}
		return raw
	}
	name, value, _ := bytes.Cut(raw, []byte(":"))
	out := make([]byte, 0, len(raw)+2)
	out = append(out, bytes.ToLower(bytes.TrimRight(name, " \t"))...)
	out = append(out, ':')
	// Unfolding removes the line breaks; then every run of white space is
	// one space, none at either end of the value.
	space, started := false, false
	for _, c := range value {
		switch c {
		case '\r', '\n':
		case ' ', '\t':
			space = true
		default:
			if space && started {
				out = append(out, ' ')
			}
			space, started = false, true
			out = append(out, c)
		}
	}
	return append(out, '\r', '\n')
}

// bodyHasher hashes a body as it streams through Write, canonicalized by
// RFC 6376 §3.4.3 (simple) or §3.4.4 (relaxed). Empty lines are held back
// until a non-empty line follows, since both drop them at the end.
type bodyHasher struct {
	h       hash.Hash
	relaxed bool
	line    []byte // the current line, without its end
	blanks  int    // empty lines held back
	any     bool   // a non-empty line was written
	digest  []byte // the hash, once sum was called
}

func newBodyHasher(canon string) *bodyHasher {
	return &bodyHasher{h: sha256.New(), relaxed: canon == canonRelaxed}
}

func (b *bodyHasher) Write(p []byte) (int, error) {
	n := len(p)
	for b.digest == nil && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.line = append(b.line, p...)
			break
		}
		b.line = append(b.line, p[:i]...)
		b.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// endLine canonicalizes the current line (its CR, if any, removed).
func (b *bodyHasher) endLine() {
	l := bytes.TrimSuffix(b.line, []byte("\r"))
	if b.relaxed {
		// §3.4.4: white space at the end removed, runs inside made one SP.
		l = compressWSP(bytes.TrimRight(l, " \t"))
	}
	if len(l) == 0 {
		b.blanks++
	} else {
		for ; b.blanks > 0; b.blanks-- {
			b.h.Write([]byte("\r\n"))
		}
		b.h.Write(l)
		b.h.Write([]byte("\r\n"))
		b.any = true
	}
	b.line = b.line[:0]
}

// compressWSP makes each run of spaces and tabs in l one space, in place
// (out never gets ahead of the byte being read).
func compressWSP(l []byte) []byte {
	out := l[:0]
	inRun := false
	for _, c := range l {
		isWSP := c == ' ' || c == '\t'
		if isWSP && inRun {
			continue
		}
		if isWSP {
			c = ' '
		}
		inRun = isWSP
		out = append(out, c)
	}
	return out
}

// sum ends the body (a last line without its line end counts as a line)
// and returns its hash; later writes are ignored. An empty body is one CRLF under simple (§3.4.3)
// and nothing under relaxed (§3.4.4).
func (b *bodyHasher) sum() []byte {
	if b.digest != nil {
		return b.digest
	}
	if len(b.line) > 0 {
		b.endLine()
	}
	if !b.any && !b.relaxed {
		b.h.Write([]byte("\r\n"))
	}
	b.digest = b.h.Sum(nil)
	return b.digest
}

var _ io.Writer = (*bodyHasher)(nil)

// pickHeaders returns the fields named in h= (RFC 6376 §5.4.2): for each
// name, the last instance not yet picked, from the bottom up; a name with
// no instance left contributes nothing.
func pickHeaders(fields []field, names []string) [][]byte {
	used := map[int]bool{}
	var out [][]byte
	for _, n := range names {
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && strings.EqualFold(fields[i].name, n) {
				used[i] = true
				out = append(out, fields[i].raw)
				break
			}
		}
	}
	return out
}

// withoutSignature returns a signature field with the value of its b= tag
// removed (RFC 6376 §3.7: the field is hashed with b= empty), and without
// its final line end (it is hashed last, without one).
func withoutSignature(raw []byte) []byte {
	raw = bytes.TrimRight(raw, "\r\n")
	name, value, _ := bytes.Cut(raw, []byte(":"))
	out := append(append([]byte{}, name...), ':')
	for i, tag := range bytes.Split(value, []byte(";")) {
		if i > 0 {
			out = append(out, ';')
		}
		k, _, ok := bytes.Cut(tag, []byte("="))
		if ok && string(bytes.TrimSpace(k)) == "b" {
			tag = tag[:bytes.IndexByte(tag, '=')+1]
		}
		out = append(out, tag...)
	}
	return out
}
