package header

import (
	"bytes"
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// RewriteUnstructured rewrites any header field value that is not an
// address field (Subject, Received, Authentication-Results, List-*,
// Delivered-To, …) by finding addresses in it with find, the text scanner
// (scan.ReplaceAddresses with scan.TextPlain), which calls fn for each.
//
// Raw text is handed to find as it is and replaced in place. Each run of
// RFC 2047 encoded-words (adjacent words are one text, section 6.2) is
// decoded and handed to find on its own; when that changes it, the run is
// re-encoded as UTF-8 encoded-words, Q or B whichever is shorter. Text
// outside changed parts stays byte for byte. An encoded-word that cannot be
// decoded is kept, unless its payload holds '@': then it returns a
// *HeaderError matching ErrUnparsableHeader.
//
// Unchanged, it returns value and false. The result is not folded.
func RewriteUnstructured(value string, find func([]byte, scan.AddrFunc) ([]byte, bool, error), fn scan.AddrFunc) (string, bool, error) {
	if !hdrMayHoldAddress(value) && !strings.Contains(value, "%40") {
		return value, false, nil
	}
	var b strings.Builder
	changed, last := false, 0
	for _, r := range hdrWordRuns(value, nil) {
		raw, c, err := usRewriteRaw(value[last:r.start], find, fn)
		if err != nil {
			return value, false, err
		}
		words, cw, err := usRewriteRun(value, r, find, fn)
		if err != nil {
			return value, false, err
		}
		b.WriteString(raw)
		b.WriteString(words)
		changed, last = changed || c || cw, r.end
	}
	raw, c, err := usRewriteRaw(value[last:], find, fn)
	if err != nil || !changed && !c {
		return value, false, err
	}
	b.WriteString(raw)
	return b.String(), true, nil
}

// usRewriteRaw rewrites text outside encoded-words. Text without '@' or
// its percent-encoded form (URLs in List-Unsubscribe, say) is not scanned.
func usRewriteRaw(s string, find func([]byte, scan.AddrFunc) ([]byte, bool, error), fn scan.AddrFunc) (string, bool, error) {
	if strings.IndexByte(s, '@') < 0 && !strings.Contains(s, "%40") {
		return s, false, nil
	}
	return usFind(s, find, fn)
}

// usRewriteRun rewrites one run of encoded-words.
func usRewriteRun(value string, r hdrWordRun, find func([]byte, scan.AddrFunc) ([]byte, bool, error), fn scan.AddrFunc) (string, bool, error) {
	raw := value[r.start:r.end]
	text, ok, hidden := r.decode(value)
	if hidden {
		return raw, false, errHiddenAddress
	}
	out, changed, err := usFind(text, find, fn)
	switch {
	case err != nil || !changed:
		return raw, false, err
	case !ok:
		// Re-encoding would turn the undecodable words into literal text.
		return raw, false, errMixedWords
	}
	return hdrEncodeWords(out), true, nil
}

// usFind runs find on s; a "change" that leaves the bytes as they were is
// none, so the field keeps its original encoding.
func usFind(s string, find func([]byte, scan.AddrFunc) ([]byte, bool, error), fn scan.AddrFunc) (string, bool, error) {
	out, changed, err := find([]byte(s), fn)
	if err != nil || !changed || bytes.Equal(out, []byte(s)) {
		return s, false, err
	}
	return string(out), true, nil
}
