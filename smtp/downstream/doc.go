// Package downstream is the client side of both routes: a pool of
// connections to one downstream server (the CRM intake or the company
// smarthost) and the SMTP wire client that talks to it (RFC 5321), with
// STARTTLS verified by default, pipelining, and dot-stuffing of its own.
//
// Every failure is an *Error whose class, ErrTemp or ErrPerm, the route
// maps to its reply with errors.Is (only a 5xx reply is permanent: unknown
// failure is temporary). An Error keeps the downstream's reply code but
// never its text in Error(), so the text cannot reach a client; the
// session code in package smtp stays the one reply boundary.
//
// A transaction mirrors the client's (DESIGN.md invariant 2): Begin at the
// first accepted recipient, Rcpt per recipient, Data with the rewritten
// message; the final dot is sent only once the whole message was read, and
// Abort leaves the downstream without it.
package downstream
