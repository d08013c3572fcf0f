// Package header finds and replaces e-mail addresses in header field
// values. RewriteAddressField parses structured address fields (From, To,
// Cc, Reply-To, …; RFC 5322 sections 3.4 and 3.6, RFC 6532) and hands each
// mailbox to a MailboxFunc; RewriteUnstructured finds addresses in any
// other field value, raw text and RFC 2047 encoded-words alike, with a
// body-text finder from package scan.
//
// Both take the raw, unfolded value and return a value the caller folds;
// unchanged input comes back as the same string, and only changed mailboxes
// or encoded-word runs are re-serialized. A value the parser cannot reach
// into returns a *HeaderError matching ErrUnparsableHeader: the caller must
// not forward such a field as it is. Error text never holds the value.
//
// The package decides nothing about addresses: package rewrite does, and
// the SMTP routes use RewriteAddressField to fix the sender fields.
package header
