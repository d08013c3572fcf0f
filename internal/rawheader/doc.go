// Package rawheader reads and splits a message's header section as raw
// bytes (RFC 5322 §2.2), for the passes over it that must leave every
// other byte as it was: DKIM verification, removing forged
// Authentication-Results fields, mapping the outbound sender fields.
//
// It is a leaf helper: smtp (sender field mapping, Authentication-Results)
// and mailauth (DKIM verification) both use it, and mailauth must not
// import smtp.
package rawheader
