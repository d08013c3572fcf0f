// Package orgdomain owns DMARC's notion of whose domain is whose: domain
// normalization (IDNA A-labels, lower case, no trailing dot), the
// Organizational Domain (RFC 7489 §3.2, from the public suffix list) and
// identifier alignment (RFC 7489 §3.1).
//
// It is a leaf helper so that one implementation serves both the run-time
// DMARC evaluation in mailauth and the load-time DKIM alignment check in
// policy, which imports no other package of ours.
package orgdomain
