// Package rewrite rewrites whole messages on their way through the proxy:
// inbound, every customer address becomes its token; outbound, every
// token becomes the customer's address again. It owns the MIME walk
// (header sections, multipart, message/rfc822, transfer and charset
// decoding and re-encoding), the limits a message is held to, the
// display-name policy, and the leak guard. It finds addresses with its
// subpackages: scan in body text and unstructured fields, header in
// structured address fields. It decides what each address becomes, through
// Tokens, the little it needs of the token map (tokenize.Map).
//
// A part with nothing to replace is emitted byte-identical; a changed part
// keeps its transfer encoding, charset and line ends.
//
// # The leak guard
//
// Inbound output reaches its writer only through the leak guard (guard.go),
// which scans it again, raw bytes and decoded text parts alike, and fails
// with ErrLeak at the first address that is neither internal nor a token.
// Its verdict comes before Inbound returns: a caller that withholds the end
// of the message until then (the SMTP routes' final dot) never delivers a
// message the guard refused. On any error, dst may hold a partial message
// that must not be delivered.
//
// # Errors
//
// Error text never holds an address: it reaches logs and SMTP replies.
// Callers classify errors with errors.Is against the sentinels below,
// tokenize.ErrUnknownToken (an *UnknownTokensError from Outbound) and
// header.ErrUnparsableHeader (a header field no parser can reach into);
// anything else (the token map failing, say) is temporary; ErrBusy (hold.go)
// says so explicitly: too many large parts are held at once.
//
// # Memory
//
// Plain-text parts without a transfer encoding, or quoted-printable, in
// UTF-8 or US-ASCII stream in chunks of about 64 KiB (textstream.go);
// attachments that are not text stream line by line. HTML, flowed text,
// calendars and vCards, text in base64 and text in single-byte charsets
// are rewritten in pieces of about 64 KiB (piecestream.go). Other text
// parts (RTF, multi-byte and stateful charsets, unknown charset labels,
// encoded attached messages) are held whole (up to MaxTextPartBytes), and
// all the messages of one Rewriter hold at most MaxHeldBytes of such
// parts at once (hold.go).
package rewrite

import (
	"context"
	"errors"
	"strings"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Tokens is what the rewriter needs of the token map (tokenize.Map
// implements it): a token for a customer address, the entry behind a
// token, and the token format, whose domain tells a token address from
// any other.
type Tokens interface {
	Tokenize(ctx context.Context, address, displayName string) (tokenize.Issued, error)
	Resolve(ctx context.Context, token string) (tokenize.Entry, error)
	Format() tokenize.Format
}

// StagedTokens is the token map as one inbound message sees it
// (tokenize.Stage implements it): new tokens are staged, not created,
// until Commit, which the caller runs once the message has passed every
// check (DESIGN.md invariants 3 and 4).
type StagedTokens interface {
	Tokens
	// Staged counts the new tokens staged so far.
	Staged() int
	// Commit makes the staged tokens durable, with their creation
	// records, and returns how many it created.
	Commit(ctx context.Context) (int, error)
}

// Stager is a token map that stages a message's new tokens: Begin starts
// one message.
type Stager interface {
	Tokens
	Begin() *tokenize.Stage
}

// The token map is the rewriter's map in production, and its stage the
// map of one inbound message.
var (
	_ Tokens       = (*tokenize.Map)(nil)
	_ Stager       = (*tokenize.Map)(nil)
	_ StagedTokens = (*tokenize.Stage)(nil)
)

// Errors of the rewriter. Their text never holds an address: it reaches
// logs and SMTP replies.
var (
	// ErrLimit: a message exceeds a configured limit (size, header size,
	// MIME depth, part count, text part size).
	ErrLimit = errors.New("message exceeds a limit")
	// ErrUnscannable: content that cannot be scanned (encrypted, unknown
	// charset, undecodable) under the reject policy. Routes answer 554 5.6.0.
	ErrUnscannable = errors.New("message content cannot be scanned for addresses")
	// ErrLeak: the leak guard found an address that is neither internal
	// nor a token in the produced message. The message must not be sent.
	ErrLeak = errors.New("leak guard: a customer address would leave untokenized")
	// ErrMalformedAddress: an address-like string that cannot be
	// normalized, so it can be neither tokenized nor let through.
	ErrMalformedAddress = errors.New("message holds a malformed address")
	// ErrTooManyNewTokens: an inbound message names more new customer
	// addresses than Limits.MaxNewTokens. Without the bound, anyone could
	// grow the map and the audit trail at will with one message (issue
	// 18, item 1). Not an ErrLimit: the routes give it its own reply.
	ErrTooManyNewTokens = errors.New("message names too many new addresses")
)

// UnknownTokensError lists the tokens of an outbound message that are
// unknown or erased; the message was rewritten with them left in place,
// and the route refuses it (550 5.1.1).
type UnknownTokensError struct{ Tokens []string }

func (e *UnknownTokensError) Error() string {
	return "unknown or erased tokens: " + strings.Join(e.Tokens, ", ")
}

func (e *UnknownTokensError) Is(target error) bool { return target == tokenize.ErrUnknownToken }
