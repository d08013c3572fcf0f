// Package smtp is the proxy's two SMTP routes, inbound and outbound: the
// listeners and their connection limits, sessions, the strict DATA/BDAT
// reader (bare CR, bare LF and NUL refused, DESIGN.md invariant 5), the
// spool for messages too large to hold in memory, configuration reload,
// metrics, and the one boundary where errors become replies
// (replies.go: generic text and a session reference, details in the log).
//
// Each client transaction is mirrored to a downstream transaction through
// package smtp/downstream; the client gets 250 only after the
// downstream's 250 (DESIGN.md invariant 2). Mail authentication (SPF,
// DKIM, DMARC) is package mailauth's.
package smtp
