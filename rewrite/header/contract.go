package header

// This file holds the contract between the MIME rewriter (package
// rewrite) and the header address parser: the rewriter decides what a
// mailbox becomes; the parser only finds and replaces.

// Mailbox is one mailbox of a structured address field.
type Mailbox struct {
	Name string // display name, decoded (RFC 2047 encoded words undone); "" if none
	Addr string // addr-spec; may be "" for a group's empty member list
}

// MailboxFunc decides what becomes of one mailbox of a structured address
// field (From, To, Cc, Reply-To, …). It returns the replacement mailbox and
// whether it differs; an error stops the rewrite.
type MailboxFunc func(m Mailbox) (Mailbox, bool, error)
