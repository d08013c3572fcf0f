package header

import (
	"errors"
	"strings"
)

// This file holds what the header rewriters share. RewriteAddressField
// (addr.go) parses structured address fields; RewriteUnstructured
// (unstructured.go) scans everything else; render.go writes changes back.
// Both take the raw, unfolded value and return a value the caller folds;
// unchanged input comes back as the same string.

// ErrUnparsableHeader is the sentinel every HeaderError matches: a field
// value that may hold an address the parser cannot reach. The rewriter
// must not forward such a field as it is.
var ErrUnparsableHeader = errors.New("unparsable header field")

// HeaderError says why a header field value could not be rewritten. Like
// address.AddressError it never holds the value: error text reaches logs
// and SMTP replies.
type HeaderError struct{ Reason string }

func (e *HeaderError) Error() string        { return "unparsable header field: " + e.Reason }
func (e *HeaderError) Is(target error) bool { return target == ErrUnparsableHeader }

var (
	errHiddenAddress = &HeaderError{Reason: "an encoded-word that cannot be decoded holds '@'"}
	errTooTangled    = &HeaderError{Reason: "too many unclosed quotes, comments or brackets"}
	errMixedWords    = &HeaderError{Reason: "an address sits in a run of encoded-words next to one that cannot be decoded"}
	// errControlInAddress refuses a replacement that would break the field
	// (a line break would start a new header field).
	errControlInAddress = errors.New("tokenize: replacement address holds a control character")
)

// hdrMayHoldAddress is the fast path: a value without '@' and without
// encoded-words holds no address in any form a structured field allows.
func hdrMayHoldAddress(v string) bool {
	return strings.IndexByte(v, '@') >= 0 || strings.Contains(v, "=?")
}
