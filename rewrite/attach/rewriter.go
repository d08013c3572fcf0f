package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// Options configure a Rewriter.
type Options struct {
	Policy Policy
	// Enforce applies the policy (the inbound route). Without it
	// (outbound, the leak guard) every kind that can be read is rewritten
	// or scanned and the rest passes: the inbound pass already decided.
	Enforce bool
	// Addr decides what each address found becomes (scan.AddrFunc).
	Addr scan.AddrFunc
	// Message rewrites a saved message found in an archive (.eml) as the
	// MIME walker does; nil scans it as plain text.
	Message func(ctx context.Context, msg []byte) ([]byte, bool, error)
	// PDF reads the PDFs found in archives and documents: its error
	// (for a customer address) means the PDF names one (pdf.go). It must
	// not tokenize: a PDF is never rewritten. nil: PDFs are not read,
	// and follow the PDF policy unread (outbound, they pass).
	PDF scan.AddrFunc
}

// Rewriter rewrites the addresses in attachments under one policy.
type Rewriter struct{ opts Options }

// New returns a Rewriter; zero policy fields take DefaultPolicy's.
func New(opts Options) *Rewriter {
	opts.Policy = opts.Policy.WithDefaults()
	return &Rewriter{opts: opts}
}

// Limits returns the limits in force.
func (r *Rewriter) Limits() Limits { return r.opts.Policy.Limits }

// Result is what became of one attachment.
type Result struct {
	Kind    Kind   // what the content turned out to be
	Action  Action // Rewrite (read; Data is the content, Changed says whether it is new), Strip or Pass
	Data    []byte
	Changed bool
}

// Part handles one attachment: data is its decoded content, kind what
// Classify made of its media type and name (KindUnknown: sniffed). An
// error wraps ErrRefused or ErrLimit (the message is refused), or is the
// AddrFunc's own.
func (r *Rewriter) Part(ctx context.Context, kind Kind, name string, data []byte) (Result, error) {
	return r.PartHeld(ctx, kind, name, data, nil)
}

// PartHeld is Part with the expansion counted through reserve (nil: not
// counted): an error of reserve is returned wrapped in ErrHeld.
func (r *Rewriter) PartHeld(ctx context.Context, kind Kind, name string, data []byte, reserve Reserve) (Result, error) {
	b := &budget{lim: r.opts.Policy.Limits, reserve: reserve}
	kind, out, changed, err := r.content(ctx, b, kind, name, data, 0)
	switch {
	case errors.Is(err, errStrip):
		return Result{Kind: kind, Action: Strip}, nil
	case errors.Is(err, errPass):
		return Result{Kind: kind, Action: Pass, Data: data}, nil
	case err != nil:
		return Result{Kind: kind}, err
	}
	return Result{Kind: kind, Action: Rewrite, Data: out, Changed: changed}, nil
}

// Unopened is the verdict on an attachment that is not opened (larger
// than Limits.MaxBytes, or in a transfer encoding that cannot be undone):
// the unreadable kind's policy; ErrRefused for refuse.
func (r *Rewriter) Unopened() (Action, error) {
	return r.Verdict(KindUnreadable)
}

// Verdict is the action for a kind decided without reading the content
// (media and PDF, which no reader here opens): ErrRefused for refuse.
func (r *Rewriter) Verdict(k Kind) (Action, error) {
	a := r.action(k)
	if a == Refuse {
		return a, fmt.Errorf("%w: %s content", ErrRefused, k)
	}
	if a == Rewrite && k != KindOffice && k != KindArchive && k != KindText {
		a = Pass // no reader: Check refuses such a policy, and unread is passed
	}
	return a, nil
}

// errPass: the content passes unread (top level only: inside an archive
// a passed member is simply kept).
var errPass = errors.New("pass")

// action is the policy's action for a kind, or without Enforce, rewrite
// for what can be read and pass for the rest.
func (r *Rewriter) action(k Kind) Action {
	if r.opts.Enforce {
		return r.opts.Policy.For(k)
	}
	switch k {
	case KindOffice, KindArchive, KindText, KindSigned:
		return Rewrite
	}
	return Pass
}

// decide turns an action other than rewrite into its error.
func (r *Rewriter) decide(k Kind) error {
	switch r.action(k) {
	case Refuse:
		return fmt.Errorf("%w: %s content", ErrRefused, k)
	case Strip:
		return errStrip
	case Pass:
		return errPass
	}
	return nil
}

// content handles content of any kind at nesting depth: it returns the
// kind it found, and the new content if it changed. Pass comes back as
// errPass, strip as errStrip.
func (r *Rewriter) content(ctx context.Context, b *budget, kind Kind, name string, data []byte, depth int) (Kind, []byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return kind, nil, false, err
	}
	kind = refine(kind, data)
	if kind == KindPDF && r.opts.PDF != nil {
		return kind, nil, false, r.pdfMember(b, data)
	}
	if kind != KindOffice && kind != KindArchive { // a container's own reader decides
		if err := r.decide(kind); err != nil {
			return kind, nil, false, err
		}
	}
	var out []byte
	var changed bool
	var err error
	switch kind {
	case KindText:
		out, changed, err = r.text(ctx, name, data)
	case KindOffice, KindArchive:
		if depth >= b.lim.MaxDepth {
			return kind, nil, false, fmt.Errorf("%w: archives nested deeper than %d", ErrLimit, b.lim.MaxDepth)
		}
		kind, out, changed, err = r.container(ctx, b, kind, name, data, depth+1)
	default:
		err = fmt.Errorf("%w: %s content has no reader", errUnreadable, kind)
	}
	if errors.Is(err, errUnreadable) {
		return KindUnreadable, nil, false, r.unreadable()
	}
	return kind, out, changed, err
}

// unreadable applies the unreadable kind's policy.
func (r *Rewriter) unreadable() error {
	if err := r.decide(KindUnreadable); err != nil {
		return err
	}
	return errPass // rewrite is not an action for it; Check refuses it
}

// refine settles a kind from the content: a name or media type claims,
// the first bytes decide where they can.
func refine(kind Kind, data []byte) Kind {
	sniffed := Sniff(data)
	switch kind {
	case KindUnknown:
		return sniffed
	case KindOffice, KindArchive:
		if sniffed == KindOffice || sniffed == KindArchive {
			return kind // a zip's members say which (container)
		}
		return KindUnreadable // not what it claims to be
	case KindText:
		if sniffed != KindText {
			return KindUnreadable // UTF-16, binary: not for this reader
		}
	}
	return kind
}

// text rewrites a text file in the form its name suggests.
func (r *Rewriter) text(ctx context.Context, name string, data []byte) ([]byte, bool, error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".eml":
		if r.opts.Message != nil {
			return r.opts.Message(ctx, data)
		}
	case ".html", ".htm", ".xhtml", ".xml", ".svg":
		return scan.ReplaceAddresses(scan.TextHTML, data, r.opts.Addr)
	case ".ics", ".vcf":
		return scan.ReplaceAddresses(scan.TextFolded, data, r.opts.Addr)
	}
	return scan.ReplaceAddresses(scan.TextPlain, data, r.opts.Addr)
}

// container opens a zip (office package or archive), gzip or tar.
func (r *Rewriter) container(ctx context.Context, b *budget, kind Kind, name string, data []byte, depth int) (Kind, []byte, bool, error) {
	switch {
	case bytes.HasPrefix(data, []byte("PK")):
		zr, err := b.openZip(data)
		if err != nil {
			return kind, nil, false, err
		}
		if isPackage(zr) {
			if err := r.decide(KindOffice); err != nil {
				return KindOffice, nil, false, err
			}
			out, changed, err := r.office(ctx, b, zr, data, depth)
			return KindOffice, out, changed, err
		}
		if err := r.decide(KindArchive); err != nil {
			return KindArchive, nil, false, err
		}
		out, changed, err := r.zipArchive(ctx, b, zr, data, depth)
		return KindArchive, out, changed, err
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		if err := r.decide(KindArchive); err != nil {
			return KindArchive, nil, false, err
		}
		out, changed, err := r.gzipArchive(ctx, b, name, data, depth)
		return KindArchive, out, changed, err
	case isTar(data):
		if err := r.decide(KindArchive); err != nil {
			return KindArchive, nil, false, err
		}
		out, changed, err := r.tarArchive(ctx, b, data, depth)
		return KindArchive, out, changed, err
	}
	return kind, nil, false, fmt.Errorf("%w: not a package or archive", errUnreadable)
}
