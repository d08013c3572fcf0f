package compliance

import (
	"html"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// CheckReason refuses an empty, overlong or address-bearing reason: a
// reason like "customer jane@example.com asked" would put the address in
// the audit trail. Commands check it before they open anything.
//
// The address test runs on the reason as typed and on its normalized form
// (normalizeReason), with the same scanner that finds addresses in mail,
// so "jane＠customer.test", "jane%40customer.test" and
// "jane&#64;customer.test" are refused like "jane@customer.test".
func CheckReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > maxReasonLen || reasonHoldsAddress(reason) {
		return errBadReason
	}
	return nil
}

// reasonHoldsAddress reports whether a reason holds an address or what
// reads as one: any '@' once normalized (stricter than the scanner: a
// reason has no use for one), an address the mail scanner finds as plain
// text or as HTML, or a spelled-out "[at]" obfuscation.
func reasonHoldsAddress(reason string) bool {
	norm := normalizeReason(reason)
	if strings.ContainsRune(norm, '@') {
		return true
	}
	for _, s := range []string{reason, norm} {
		if scannerFinds(scan.TextPlain, s) || scannerFinds(scan.TextHTML, s) {
			return true
		}
	}
	return spelledAt.MatchString(norm)
}

// normalizeRounds bounds the decoding rounds: "%2540" and "&amp;#64;" need
// two; an input still changing after a few rounds is refused by whatever
// it holds by then, since every round only ever turns text into '@'.
const normalizeRounds = 4

// normalizeReason undoes the encodings an address can hide behind in a
// reason: Unicode compatibility forms (NFKC, Unicode UAX #15: full-width
// '＠' U+FF20 and small '﹫' U+FE6B become '@'), HTML character references
// ("&#64;", "&commat;") and percent-encoding (RFC 3986 section 2.1), until
// the text no longer changes.
func normalizeReason(s string) string {
	for range normalizeRounds {
		next := norm.NFKC.String(percentDecode(html.UnescapeString(s)))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// percentDecode decodes every well-formed "%XX" (RFC 3986 section 2.1) and
// keeps any other '%' as it is: unlike url.PathUnescape it never fails, so
// "100% sure, jane%40customer.test" is still decoded.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			b.WriteByte(hexVal(s[i+1])<<4 | hexVal(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// scannerFinds reports whether the mail address scanner sees an address in
// s read as the given kind of text.
func scannerFinds(kind scan.TextKind, s string) bool {
	found := false
	_, _, _ = scan.ReplaceAddresses(kind, []byte(s), func(string) (string, error) {
		found = true
		return "", nil
	})
	return found
}

// spelledAt matches the usual spelled-out forms of an address: "[at]",
// "(at)" or "{at}" between two words, and a plain " at " only when a host
// name follows it (labels joined by '.' or a spelled "dot", ending in an
// alphabetic label), so prose like "called at 10.30" or "filed at noon"
// passes.
var spelledAt = regexp.MustCompile(`(?i)` +
	`\w\s*[\[({<]\s*at\s*[\])}>]\s*\w` +
	`|\w\s+at\s+[\p{L}\p{N}-]+(?:\s*(?:\.|[\[({<]\s*dot\s*[\])}>]|\s+dot\s+)\s*[\p{L}\p{N}-]+)*\s*(?:\.|[\[({<]\s*dot\s*[\])}>]|\s+dot\s+)\s*\p{L}{2,}\b`)
