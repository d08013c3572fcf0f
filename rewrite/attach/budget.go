package attach

import (
	"bytes"
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
		buf.Grow(int(declared) + bytes.MinRead)
		limit = declared
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	b.expanded += n
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
