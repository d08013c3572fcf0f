package tokenize

// This file holds the contract between the MIME rewriter (rewrite*.go),
// the body text scanner (scan*.go) and the header address parser
// (header*.go). The rewriter decides; the scanners only find and replace.

// AddrFunc decides what becomes of one address found in text or in an
// unstructured header. addr is the addr-spec as found, decoded (entities,
// percent-encoding and folding undone). It returns the replacement
// addr-spec, or "" to keep the address as it is. An error stops the scan
// and is returned to the caller unchanged (the leak guard and an unknown
// token in the outbound direction use this).
type AddrFunc func(addr string) (replacement string, err error)

// Mailbox is one mailbox of a structured address field.
type Mailbox struct {
	Name string // display name, decoded (RFC 2047 encoded words undone); "" if none
	Addr string // addr-spec; may be "" for a group's empty member list
}

// MailboxFunc decides what becomes of one mailbox of a structured address
// field (From, To, Cc, Reply-To, …). It returns the replacement mailbox and
// whether it differs; an error stops the rewrite.
type MailboxFunc func(m Mailbox) (Mailbox, bool, error)

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
)
