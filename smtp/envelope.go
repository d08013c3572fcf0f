package smtp

import (
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/address"
)

// Envelope refusals of issue 18 (items 7 and 8). They sit with the checks
// that use them; the reply boundary (replies.go) treats them like the
// other refusals.
var (
	// errRoutedRecipient: a recipient whose local part asks the next hop
	// to route it further (RFC 5321 §3.6.1). 553 is "mailbox name not allowed"
	// and 5.7.1 "delivery not authorized" (RFC 3463 §3.8).
	errRoutedRecipient = &refusal{553, gosmtp.EnhancedCode{5, 7, 1}, "Recipient address with a routing part not allowed"}
	// errRelayDomainSender: an envelope sender in the relay domain (a
	// token or not) from a client that is not a trusted relay.
	errRelayDomainSender = &refusal{550, gosmtp.EnhancedCode{5, 7, 1}, "Sender address not accepted from this client"}
)

// routesOnward reports whether a normalized local part holds the
// characters older MTAs route by: '%' (the "percent hack",
// user%host@relay, Postfix allow_percent_hack) and '!' (UUCP bang paths,
// host!user@relay, Postfix swap_bangpath). A smarthost with those
// defaults would relay such a recipient off the allowed domain.
func routesOnward(a address.Address) bool {
	return strings.ContainsAny(a.Local, "%!")
}
