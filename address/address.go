// Package address normalizes e-mail addresses the one way every part of
// tokenproxy compares them: domains as lower-case ASCII (IDNA, RFC 5890),
// local parts case-folded or preserved by policy, the RFC 5321 length
// limits enforced. Errors never hold the address: their text reaches logs
// and SMTP replies.
package address

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalidAddress is the sentinel every address error matches.
var ErrInvalidAddress = errors.New("invalid address")

// AddressError says why an address was refused. It never holds the address
// itself: error text reaches logs and SMTP replies.
type AddressError struct{ Reason string }

func (e *AddressError) Error() string        { return "invalid address: " + e.Reason }
func (e *AddressError) Is(target error) bool { return target == ErrInvalidAddress }

func addrErr(reason string) error { return &AddressError{Reason: reason} }

// RFC 5321 section 4.5.3.1: a path holds at most 256 octets including the
// angle brackets, so an address at most 254; a local part at most 64.
const (
	maxAddressOctets = 254
	maxLocalOctets   = 64
	maxDomainOctets  = 253
)

// LocalCase is the policy for comparing local parts.
type LocalCase string

const (
	// LocalFold compares local parts case-insensitively (Unicode lower
	// case). RFC 5321 lets the receiving host decide; virtually every
	// mailbox provider ignores case, so this is the default.
	LocalFold LocalCase = "fold"
	// LocalPreserve treats John@ and john@ as different customers.
	LocalPreserve LocalCase = "preserve"
)

// Address is a normalized addr-spec: the form token derivation hashes.
type Address struct {
	Local  string // unquoted when it is a dot-atom, NFC, folded per policy
	Domain string // lower-case ASCII: IDNA A-labels, or a domain literal
}

// String returns the address in SMTP form, quoting the local part when it
// is not a dot-atom (RFC 5321 section 4.1.2).
func (a Address) String() string { return quoteLocal(a.Local) + "@" + a.Domain }

// idnaProfile maps and validates domains as for a DNS lookup (UTS #46),
// which lower-cases and turns U-labels into A-labels.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(true))

// Normalize parses an addr-spec (optionally in angle brackets) and returns
// its normal form. It accepts quoted local parts and SMTPUTF8 (RFC 6531)
// local parts and domains.
func Normalize(s string, lc LocalCase) (Address, error) {
	s = Trim(s)
	if len(s) > maxAddressOctets {
		return Address{}, addrErr("longer than 254 octets")
	}
	if !utf8.ValidString(s) {
		return Address{}, addrErr("not valid UTF-8")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, addrErr("no @")
	}
	local, err := normalizeLocal(s[:at], lc)
	if err != nil {
		return Address{}, err
	}
	domain, err := NormalizeDomain(s[at+1:])
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// Trim strips white space and angle brackets: the form of an address
// kept as the customer wrote it.
func Trim(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	return s
}

// NormalizeDomain returns a domain in lower-case ASCII form.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".") // the root label of a fully qualified name
	if d == "" {
		return "", addrErr("empty domain")
	}
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return "", addrErr("domain has an empty label")
	}
	if a, ok := ldhHost(d, false); ok {
		return a, nil
	}
	if strings.HasPrefix(d, "[") {
		return normalizeLiteral(d)
	}
	a, err := idnaProfile.ToASCII(d)
	if err != nil {
		return "", addrErr("domain is not a valid IDNA host name")
	}
	// The profile accepts some degenerate input ("xn--" alone decodes to
	// an empty label); what it returns must itself be a plain host name.
	if _, ok := ldhHost(a, true); !ok {
		return "", addrErr("domain is not a valid IDNA host name")
	}
	if len(a) > maxDomainOctets {
		return "", addrErr("domain longer than 253 octets")
	}
	return a, nil
}

// ldhHost accepts a host name of letter-digit-hyphen labels and returns it
// in lower case. It is the fast path for the common case, sparing the
// UTS #46 machinery: without aLabels it refuses labels with hyphens at 3
// and 4 ("xn--"), whose Punycode the IDNA profile must check. U-labels and
// odd characters also go to the profile.
func ldhHost(d string, aLabels bool) (string, bool) {
	if len(d) > maxDomainOctets {
		return "", false
	}
	label := 0
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case c == '.':
			if label == 0 || d[i-1] == '-' {
				return "", false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 || (!aLabels && label == 3 && d[i-1] == '-') {
				return "", false // leading hyphen, or hyphens at 3 and 4 ("xn--", RFC 5891 4.2.3.1)
			}
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return "", false
		}
		if label++; label > 63 {
			return "", false
		}
	}
	// A single label ("user@localhost") is a valid Domain (RFC 5321
	// section 4.1.2); such mail exists in test and internal set-ups.
	if label == 0 || d[len(d)-1] == '-' {
		return "", false
	}
	return strings.ToLower(d), true
}

// normalizeLiteral accepts an address literal (RFC 5321 section 4.1.3).
func normalizeLiteral(d string) (string, error) {
	if !strings.HasSuffix(d, "]") || len(d) < 3 {
		return "", addrErr("malformed domain literal")
	}
	for _, r := range d[1 : len(d)-1] {
		if r <= ' ' || r >= 0x7f || r == '[' || r == ']' || r == '\\' {
			return "", addrErr("malformed domain literal")
		}
	}
	return strings.ToLower(d), nil
}

func normalizeLocal(l string, lc LocalCase) (string, error) {
	if l == "" {
		return "", addrErr("empty local part")
	}
	var err error
	if strings.HasPrefix(l, `"`) {
		if l, err = unquoteLocal(l); err != nil {
			return "", err
		}
	} else if !isDotAtom(l) {
		return "", addrErr("local part is neither a dot-atom nor a quoted string")
	}
	if l == "" {
		return "", addrErr("empty local part")
	}
	// RFC 6530 section 10.1: non-ASCII mailbox names should be NFC.
	if !isASCII(l) {
		l = norm.NFC.String(l)
	}
	if lc != LocalPreserve {
		l = strings.ToLower(l)
	}
	if len(quoteLocal(l)) > maxLocalOctets {
		return "", addrErr("local part longer than 64 octets")
	}
	return l, nil
}

// unquoteLocal decodes a quoted-string local part (RFC 5321 section 4.1.2:
// qtextSMTP and quoted-pairSMTP, extended with UTF-8 by RFC 6531).
func unquoteLocal(q string) (string, error) {
	if len(q) < 2 || !strings.HasSuffix(q, `"`) {
		return "", addrErr("unterminated quoted local part")
	}
	var b strings.Builder
	body := q[1 : len(q)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\':
			i++
			if i == len(body) || body[i] < ' ' || body[i] > '~' {
				return "", addrErr("bad quoted pair in local part")
			}
			b.WriteByte(body[i])
		case c == '"':
			return "", addrErr("stray quote in local part")
		case c < ' ' || c == 0x7f:
			return "", addrErr("control character in local part")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// quoteLocal returns a local part in its shortest SMTP form: bare when it
// is a dot-atom, else a quoted string.
func quoteLocal(l string) string {
	if isDotAtom(l) {
		return l
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(l); i++ {
		if l[i] == '"' || l[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(l[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDotAtom reports whether s is a dot-atom of atext, with UTF-8 allowed
// (RFC 5322 section 3.2.3, RFC 6532 section 3.2).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !IsAtext(r) {
			return false
		}
	}
	return true
}

// IsAtext reports whether r may appear in an atom (RFC 5322 section 3.2.3,
// with RFC 6532's UTF-8): the characters Normalize accepts in a dot-atom
// local part, and those the header parser renders unquoted.
func IsAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError && r != 0x85 && !(r >= 0x80 && r < 0xa0)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
