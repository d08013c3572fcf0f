package mailauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/tokenproxy/tokenproxy/internal/orgdomain"
	"github.com/tokenproxy/tokenproxy/internal/rawheader"
)

// maxHeaderBytes bounds the header section Verify holds in memory. The
// routes' own limits are lower; this only keeps a caller without limits
// safe.
const maxHeaderBytes = 1 << 20

// field is one header field as it appears in the message.
type field struct {
	name string // as written, without trailing white space
	raw  []byte // the whole field: name, colon, value, folding and line ends
}

// value returns the field's unfolded value (RFC 5322 §2.2.3): the line
// breaks of folding removed, surrounding white space trimmed.
func (f field) value() string {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	v = bytes.ReplaceAll(v, []byte("\n"), nil)
	return strings.TrimSpace(string(v))
}

// splitFields returns the fields of a header section, in order.
func splitFields(hdr []byte) []field {
	var fields []field
	for {
		f, rest, ok := rawheader.Next(hdr)
		if !ok {
			return fields
		}
		name, _, _ := bytes.Cut(f, []byte(":"))
		fields = append(fields, field{name: strings.TrimRight(string(name), " \t"), raw: f})
		hdr = rest
	}
}

// removeFields returns a header section (raw bytes) without the fields
// drop reports true for, and how many it removed; what is kept, the empty
// line and any body after it keep their bytes and order.
func removeFields(hdr []byte, drop func(field []byte) bool) ([]byte, int) {
	out := make([]byte, 0, len(hdr))
	removed := 0
	for {
		f, rest, ok := rawheader.Next(hdr)
		if !ok {
			return append(out, hdr...), removed
		}
		if drop(f) {
			removed++
		} else {
			out = append(out, f...)
		}
		hdr = rest
	}
}

// fieldsNamed returns the fields called name (case-insensitive), in order.
func fieldsNamed(fields []field, name string) []field {
	var out []field
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	return out
}

// addressParser parses From fields whatever the charset of encoded words
// in display names: only the domain matters here.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// fromDomain returns the RFC5322.From domain, the identifier DMARC
// evaluates. RFC 7489 §6.6.1: a message without exactly one From field, or
// whose From names several domains, cannot be evaluated.
func fromDomain(fields []field) (string, error) {
	from := fieldsNamed(fields, "From")
	if len(from) != 1 {
		return "", fmt.Errorf("%d From fields", len(from))
	}
	list, err := addressParser.ParseList(from[0].value())
	if err != nil {
		return "", errors.New("unparsable From field")
	}
	domain := ""
	for _, a := range list {
		d := orgdomain.Normalize(domainOf(a.Address))
		if d == "" || (domain != "" && d != domain) {
			return "", errors.New("the From field names no single domain")
		}
		domain = d
	}
	if domain == "" {
		return "", errors.New("empty From field")
	}
	return domain, nil
}

// domainOf returns the part of an address after its last "@" ("" without
// one).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

// parseTags parses a tag=value list (RFC 6376 §3.2, also the syntax of
// DMARC, MTA-STS and TLS-RPT records) into a map from lower-case tag name to
// value, white space around names and values removed. Malformed elements
// are skipped: the libraries that verify do their own strict parsing.
func parseTags(s string) map[string]string {
	tags := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		tags[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return tags
}
