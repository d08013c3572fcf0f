package rewrite

import (
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// bodyKind is how a text part's body is scanned: by its media type
// (textKindOf), and for text/plain by its format parameter too. Flowed
// text (RFC 3676) is scanned as its reader joins it, so an address split
// by a soft line break is still one address.
func bodyKind(mt string, params map[string]string) scan.TextKind {
	kind := textKindOf(mt)
	if kind != scan.TextPlain || mt != "text/plain" || !strings.EqualFold(strings.TrimSpace(params["format"]), "flowed") {
		return kind
	}
	if strings.EqualFold(strings.TrimSpace(params["delsp"]), "yes") { // RFC 3676 section 4.2
		return scan.TextFlowedDelSp
	}
	return scan.TextFlowed
}
