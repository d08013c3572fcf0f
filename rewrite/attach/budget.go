package attach

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// budget is what one attachment may still cost: it is shared by every
// archive and document nested in it, so a bomb of many small members or of
// nested archives is stopped as surely as one huge member.
type budget struct {
	lim      Limits
	members  int
	expanded int64
	// texts hold the inflated document parts read into recycled
	// buffers (textBuf), until the document that read them is written.
	texts []*[]byte
	// reserve, when set, is asked before the expansion grows (Reserve).
	reserve Reserve
}

// Reserve is told, before an attachment's expansion grows, how many bytes
// of expanded content it will then hold in all; its error stops the
// reading and is returned wrapped in ErrHeld. The caller counts them
// against its budget of memory held at once (the rewriter's per-route
// rewrite.limits.max_held_bytes), so opened attachments are bounded in
// total, not only one by one.
type Reserve func(expanded int64) error

// ErrHeld wraps a Reserve's refusal: not a fault of the attachment, so
// never read as unreadable content.
var ErrHeld = errors.New("attachment expansion not held")

// reserveStep is how far ahead an expansion of undeclared size reserves.
const reserveStep = 1 << 20

// reserveUpTo asks the caller's Reserve for expanded bytes in all.
func (b *budget) reserveUpTo(expanded int64) error {
	if b.reserve == nil {
		return nil
	}
	if err := b.reserve(expanded); err != nil {
		return fmt.Errorf("%w: %w", ErrHeld, err)
	}
	return nil
}

// reservingReader asks for each reserveStep of expansion before reading
// it, for content whose size is not declared.
type reservingReader struct {
	r    io.Reader
	b    *budget
	read int64 // bytes of expansion in all, this reader's included
	upTo int64 // reserved so far
	err  error
}

func (rr *reservingReader) Read(p []byte) (int, error) {
	if rr.err != nil {
		return 0, rr.err
	}
	if rr.read+int64(len(p)) > rr.upTo {
		next := rr.read + max(int64(len(p)), reserveStep)
		if rr.err = rr.b.reserveUpTo(next); rr.err != nil {
			return 0, rr.err
		}
		rr.upTo = next
	}
	n, err := rr.r.Read(p)
	rr.read += int64(n)
	return n, err
}

// textBufs recycle the buffers office document parts are inflated into:
// a new 10 MB buffer each time cost more in clearing fresh memory than
// scanning the part did (docs/benchmarks.md).
var textBufs = sync.Pool{New: func() any { return new([]byte) }}

// textBuf returns a recycled buffer, held until release.
func (b *budget) textBuf() *[]byte {
	p := textBufs.Get().(*[]byte)
	b.texts = append(b.texts, p)
	return p
}

// release recycles the buffers taken since mark (len(b.texts) then): a
// document releases its own parts' buffers once it is written, and
// nothing it returns points into them.
func (b *budget) release(mark int) {
	for _, p := range b.texts[mark:] {
		textBufs.Put(p)
	}
	b.texts = b.texts[:mark]
}

// member counts one archive member.
func (b *budget) member() error {
	if b.members++; b.members > b.lim.MaxMembers {
		return fmt.Errorf("%w: more than %d archive members", ErrLimit, b.lim.MaxMembers)
	}
	return nil
}

// expand reads decompressed content from r, compressed bytes long, of
// declared size (negative: not declared), through an io.LimitReader: at
// most what the expanded-bytes budget has left, and for content over
// ratioFloor at most MaxRatio times compressed. The declared size is
// checked before a byte is read, the actual size after; a member that
// grows past either is ErrLimit, whatever it claimed.
func (b *budget) expand(r io.Reader, compressed, declared int64) ([]byte, error) {
	return b.expandInto(nil, r, compressed, declared)
}

// expandInto is expand reading into buf's memory where it is large
// enough.
func (b *budget) expandInto(into []byte, r io.Reader, compressed, declared int64) ([]byte, error) {
	limit := b.lim.MaxExpandedBytes - b.expanded
	if byRatio := max(compressed*int64(b.lim.MaxRatio), ratioFloor); byRatio < limit {
		limit = byRatio
	}
	if declared > limit {
		return nil, fmt.Errorf("%w: a member declares %d bytes expanded from %d", ErrLimit, declared, compressed)
	}
	buf := bytes.NewBuffer(into[:0])
	if declared >= 0 {
		if err := b.reserveUpTo(b.expanded + declared); err != nil {
			return nil, err
		}
		buf.Grow(int(declared) + bytes.MinRead)
		limit = declared
	}
	rr := &reservingReader{r: io.LimitReader(r, limit+1), b: b, read: b.expanded, upTo: b.expanded + max(declared, 0)}
	n, err := buf.ReadFrom(rr)
	b.expanded += n
	if rr.err != nil {
		return nil, rr.err
	}
	if n > limit && declared >= 0 {
		return nil, fmt.Errorf("%w: a member is larger than it declares", ErrLimit)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: content expands to more than %d bytes from %d", ErrLimit, limit, compressed)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	if declared >= 0 && n != declared {
		return nil, fmt.Errorf("%w: a member is shorter than it declares", errUnreadable)
	}
	return buf.Bytes(), nil
}
