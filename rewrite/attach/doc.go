// Package attach rewrites addresses in attachments: office documents
// (OOXML docx/xlsx/pptx, OpenDocument odt/ods/odp), archives (zip, gzip,
// tar, and tar inside gzip) and the text files inside them, recursively and
// under limits; and it applies the attachment policy (rewrite, strip,
// refuse, pass) per kind of content. DESIGN.md, "Beyond text parts".
//
// It finds addresses with rewrite/scan only: office XML is scanned as
// HTML-like markup, so text split across runs by formatting ("jane" in one
// run, "@example.com" in a bold one) is one address, whose replacement goes
// into the first run while the others lose their share (xmltext.go). What
// an address becomes is the caller's AddrFunc, as everywhere in the
// rewriter: a token inbound, the address again outbound, a leak for the
// guard.
//
// Content is never changed unless an address was replaced: an attachment,
// archive member or document part with nothing to replace is emitted byte
// for byte, and a changed package keeps its members, their order, names,
// times and compression methods (ODF's "mimetype" stays first and stored).
//
// # Limits
//
// Archives are read through io.LimitReader against a budget shared by the
// whole attachment (depth, member count, expanded bytes, expansion ratio),
// with each member's declared size checked before it is read and its
// actual size after; a zip bomb is ErrLimit, never memory growth.
//
// # Errors
//
// ErrRefused (policy refuse) and ErrLimit are refusals of the message.
// Their text never holds an address or a file name: it reaches logs and
// SMTP replies.
package attach
