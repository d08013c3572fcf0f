package attach

import "errors"

// Action is what becomes of an attachment of one kind.
type Action string

// Actions. Pass forwards content unread; it is only allowed for kinds the
// proxy cannot rewrite (media, unreadable content; a PDF passes only
// when it names nobody, rewrite/pdfpart.go).
const (
	Rewrite Action = "rewrite"
	Strip   Action = "strip"
	Refuse  Action = "refuse"
	Pass    Action = "pass"
)

// Errors of the package. Their text never holds an address or a name.
var (
	// ErrRefused: the policy refuses an attachment of this kind.
	ErrRefused = errors.New("attachment refused by policy")
	// ErrLimit: an attachment exceeds a limit (nesting, members, expanded
	// bytes, expansion ratio): a zip bomb, or too large to inspect.
	ErrLimit = errors.New("attachment exceeds a limit")
	// errUnreadable marks content no one can read (encrypted, damaged,
	// an unsupported compression method): the unreadable kind's policy.
	errUnreadable = errors.New("unreadable")
	// errStrip carries a member's strip decision up to the attachment
	// that holds it: the whole attachment is stripped.
	errStrip = errors.New("strip")
)

// Policy says what to do with each kind of attachment. Only inbound
// enforces it (Options.Enforce); outbound and the leak guard rewrite or
// scan what they can read and pass the rest.
type Policy struct {
	Office     Action // rewrite | strip | refuse
	Archive    Action // rewrite | strip | refuse
	Text       Action // text files in archives and text sent as a generic type: rewrite | strip | refuse
	Signed     Action // a signed office document that would change: rewrite (signature broken) | strip | refuse
	PDF        Action // a PDF naming a customer: strip | refuse | pass (refused too: PDFs are read, never rewritten)
	Media      Action // images, audio, video, fonts: pass | strip | refuse
	Unreadable Action // encrypted, damaged or unknown binary: pass | strip | refuse
	Limits     Limits
}

// Limits bound the work one attachment may cause.
type Limits struct {
	MaxBytes         int64 // an attachment larger than this is not opened: unreadable
	MaxDepth         int   // archives and documents nested in one another
	MaxMembers       int   // members of all archives in one attachment
	MaxExpandedBytes int64 // bytes decompressed for one attachment
	MaxRatio         int   // expanded/compressed, for members over 1 MiB
}

// DefaultPolicy is documented in deploy/examples/quickstart.yaml.
var DefaultPolicy = Policy{
	Office: Rewrite, Archive: Rewrite, Text: Rewrite, Signed: Refuse,
	PDF: Strip, Media: Pass, Unreadable: Pass,
	Limits: Limits{MaxBytes: 16 << 20, MaxDepth: 4, MaxMembers: 2000,
		MaxExpandedBytes: 64 << 20, MaxRatio: 100},
}

// ratioFloor: below it a member's expansion ratio is not checked; small
// runs of zeros compress a thousandfold and harm no one.
const ratioFloor = 1 << 20

// For returns the action for a kind.
func (p Policy) For(k Kind) Action {
	switch k {
	case KindOffice:
		return p.Office
	case KindArchive:
		return p.Archive
	case KindText:
		return p.Text
	case KindSigned:
		return p.Signed
	case KindPDF:
		return p.PDF
	case KindMedia:
		return p.Media
	}
	return p.Unreadable
}

// WithDefaults fills zero fields from DefaultPolicy.
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy
	set := func(dst *Action, v Action) {
		if v != "" {
			*dst = v
		}
	}
	set(&d.Office, p.Office)
	set(&d.Archive, p.Archive)
	set(&d.Text, p.Text)
	set(&d.Signed, p.Signed)
	set(&d.PDF, p.PDF)
	set(&d.Media, p.Media)
	set(&d.Unreadable, p.Unreadable)
	l := p.Limits
	if l.MaxBytes > 0 {
		d.Limits.MaxBytes = l.MaxBytes
	}
	if l.MaxDepth > 0 {
		d.Limits.MaxDepth = l.MaxDepth
	}
	if l.MaxMembers > 0 {
		d.Limits.MaxMembers = l.MaxMembers
	}
	if l.MaxExpandedBytes > 0 {
		d.Limits.MaxExpandedBytes = l.MaxExpandedBytes
	}
	if l.MaxRatio > 0 {
		d.Limits.MaxRatio = l.MaxRatio
	}
	return d
}
