package scan

// AddrFunc decides what becomes of one address found in text or in an
// unstructured header. addr is the addr-spec as found, decoded (entities,
// percent-encoding and folding undone). It returns the replacement
// addr-spec, or "" to keep the address as it is. An error stops the scan
// and is returned to the caller unchanged (the leak guard and an unknown
// token in the outbound direction use this).
type AddrFunc func(addr string) (replacement string, err error)

// TextKind says how a body's text is laid out, which decides how addresses
// hide in it.
type TextKind int

const (
	// TextPlain: text/plain, text/csv, text/markdown, application/json…
	// Addresses appear as is, after mailto:, or percent-encoded in URLs.
	TextPlain TextKind = iota
	// TextHTML: text/html and XML. In addition to the plain forms,
	// addresses appear with character references (&#64; &#x40; &commat;
	// &period; …), in attribute values, and split by markup
	// (jane<span>@</span>example.com, jane@<b>example.com</b>).
	TextHTML
	// TextFolded: text/calendar (RFC 5545 section 3.1) and text/vcard
	// (RFC 6350 section 3.2): content lines folded with CRLF followed by a
	// space or tab; property values may escape characters with '\'.
	TextFolded
	// TextFlowed: text/plain; format=flowed (RFC 3676), scanned with its
	// soft line breaks joined as a reader joins them; TextFlowedDelSp is
	// the same with DelSp=yes, where the space of a soft break is removed.
	// The output keeps the soft breaks.
	TextFlowed
	TextFlowedDelSp
	// TextRTF: Rich Text Format (text/rtf, application/rtf). Addresses
	// hide in escapes (\'40, \u64?), behind control words and groups,
	// and in field instructions (HYPERLINK "mailto:…").
	TextRTF
)
