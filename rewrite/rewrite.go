package rewrite

import (
	"context"
	"io"

	"github.com/tokenproxy/tokenproxy/rewrite/attach"
)

// Policy values.
const (
	NamesKeep         = "keep"
	NamesPseudonymize = "pseudonymize"
	NamesDrop         = "drop"

	UnscannableReject      = "reject"
	UnscannableHeadersOnly = "headers-only"
)

// Limits bound what the rewriter accepts. Zero fields take the defaults.
type Limits struct {
	MaxMessageBytes  int64 // whole message; default 50 MiB
	MaxHeaderBytes   int   // one header section; default 256 KiB
	MaxDepth         int   // MIME nesting; default 20
	MaxParts         int   // MIME parts in all; default 1000
	MaxTextPartBytes int   // one text part, buffered to rewrite; default 16 MiB
	// MaxNewTokens bounds the tokens one inbound message may create
	// (ErrTooManyNewTokens), the envelope sender's included when the
	// message is rewritten through a Stage; default 50. Known addresses
	// are never counted: a long thread with many known customers passes.
	MaxNewTokens int
	// MaxHeldBytes bounds the bytes that all messages rewritten by one
	// Rewriter hold at once: parts held whole (text parts not streamed,
	// encoded attached messages) beyond the first 256 KiB of each, and
	// opened attachments and PDFs with their expansion (hold.go);
	// default 128 MiB. Over it, a message waits for nothing: it gets
	// ErrBusy (temporary), or ErrLimit if it alone needs more.
	MaxHeldBytes int64
	// pieceFrom: a text part larger than this is rewritten in pieces,
	// a smaller one held whole (piecestream.go); default pieceFromBytes.
	// Tests lower it to cut small parts.
	pieceFrom int
}

// DefaultLimits are documented in deploy/examples/quickstart.yaml.
var DefaultLimits = Limits{
	MaxMessageBytes:  50 << 20,
	MaxHeaderBytes:   256 << 10,
	MaxDepth:         20,
	MaxParts:         1000,
	MaxTextPartBytes: 16 << 20,
	MaxNewTokens:     50,
	MaxHeldBytes:     128 << 20,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxMessageBytes > 0 {
		d.MaxMessageBytes = l.MaxMessageBytes
	}
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxParts > 0 {
		d.MaxParts = l.MaxParts
	}
	if l.MaxTextPartBytes > 0 {
		d.MaxTextPartBytes = l.MaxTextPartBytes
	}
	if l.MaxNewTokens > 0 {
		d.MaxNewTokens = l.MaxNewTokens
	}
	if l.MaxHeldBytes > 0 {
		d.MaxHeldBytes = l.MaxHeldBytes
	}
	d.pieceFrom = pieceFromBytes
	if l.pieceFrom > 0 {
		d.pieceFrom = l.pieceFrom
	}
	return d
}

// RewriteOptions configures a Rewriter.
type RewriteOptions struct {
	// Internal reports whether a lower-case ASCII domain is the company's
	// or the CRM's: addresses there are never tokenized.
	Internal     func(domain string) bool
	DisplayNames string // keep | pseudonymize | drop; default pseudonymize
	Unscannable  string // reject | headers-only; default reject
	Limits       Limits
	// Attachments: what becomes of office documents, archives, PDFs and
	// other attachments, per kind (rewrite/attach); zero fields default.
	Attachments attach.Policy
}

// Rewriter rewrites messages in both directions with one token map.
type Rewriter struct {
	tokens Tokens
	opts   RewriteOptions
	// attachments is opts.Attachments, shared by the copies of the
	// Rewriter (staged, guard) and pointed to by each message's passes.
	attachments *attach.Policy
	held        *heldBudget // shared by every message of this Rewriter
}

// NewRewriter returns a Rewriter over the token map m.
func NewRewriter(m Tokens, opts RewriteOptions) *Rewriter {
	if opts.DisplayNames == "" {
		opts.DisplayNames = NamesPseudonymize
	}
	if opts.Unscannable == "" {
		opts.Unscannable = UnscannableReject
	}
	if opts.Internal == nil {
		opts.Internal = func(string) bool { return false }
	}
	opts.Limits = opts.Limits.withDefaults()
	opts.Attachments = opts.Attachments.WithDefaults()
	return &Rewriter{tokens: m, opts: opts, attachments: &opts.Attachments, held: &heldBudget{max: opts.Limits.MaxHeldBytes}}
}

// Report tells what a rewrite did, for the routes' logs and audit: tokens
// only, never addresses.
type Report struct {
	Tokens  []string // tokens written (inbound) or resolved (outbound), each once
	Created int      // tokens created by this message (inbound)
	Parts   int      // MIME parts walked
	Changed int      // parts whose body changed
	// Stripped holds the references of the attachments the policy
	// replaced by a notice, for the log line that finds them; Quarantine
	// the originals, for the caller to keep once the message passed.
	Stripped   []string
	Quarantine []Stripped
	// HeaderUTF8: a header section written, the message's or a MIME
	// part's, carries 8-bit octets, so the message needs SMTPUTF8 to
	// travel (RFC 6532 §3); the next hop's client checks the message's
	// own header, not its parts'.
	HeaderUTF8 bool

	seen map[string]bool // Tokens as a set: a CSV can hold thousands
}

func (r *Report) addToken(local string) {
	if r.seen[local] {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[local] = true
	r.Tokens = append(r.Tokens, local)
}

// Inbound replaces every customer address in the message from src with
// its token and writes the result to dst, checking the result with the
// leak guard as it goes. On error, dst may hold a partial message: the
// caller must not deliver it (the SMTP route aborts the downstream DATA).
func (rw *Rewriter) Inbound(ctx context.Context, dst io.Writer, src io.Reader) (*Report, error) {
	return rw.inbound(ctx, dst, src, 0)
}

// InboundStaged is Inbound with the message's new tokens staged in st
// rather than created: the caller commits them (st.Commit) only once the
// message has passed every check, so a refused message creates no token
// (DESIGN.md invariant 4). The new tokens st staged before (the envelope
// sender's) count towards Limits.MaxNewTokens.
func (rw *Rewriter) InboundStaged(ctx context.Context, st StagedTokens, dst io.Writer, src io.Reader) (*Report, error) {
	staged := *rw
	staged.tokens = st
	return staged.inbound(ctx, dst, src, st.Staged())
}

func (rw *Rewriter) inbound(ctx context.Context, dst io.Writer, src io.Reader, base int) (*Report, error) {
	rep := &Report{}
	err := rw.withGuard(ctx, dst, func(out io.Writer) error {
		return rw.walk(ctx, src, out, rw.inboundPolicy(ctx, rep, base), rep)
	})
	return rep, err
}

// Outbound replaces tokens with the original addresses and display names.
// Unknown or erased tokens are left in place and reported with an
// *UnknownTokensError once the whole message is written.
func (rw *Rewriter) Outbound(ctx context.Context, dst io.Writer, src io.Reader) (*Report, error) {
	rep := &Report{}
	pol := rw.outboundPolicy(ctx, rep)
	if err := rw.walk(ctx, src, dst, pol, rep); err != nil {
		return rep, err
	}
	if len(pol.unknown) > 0 {
		return rep, &UnknownTokensError{Tokens: pol.unknown}
	}
	return rep, nil
}

// Guard scans a message (raw lines and decoded text parts) and returns an
// error wrapping ErrLeak at the first address that is neither internal nor
// a token. It is the inbound direction's last stage.
func (rw *Rewriter) Guard(ctx context.Context, src io.Reader) error {
	return rw.walk(ctx, src, nil, rw.guardPolicy(), &Report{})
}
