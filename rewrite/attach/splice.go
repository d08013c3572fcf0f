package attach

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// Splicing a changed member's deflate stream (RFC 1951). A text-only docx
// of 1 MB holds about 10 MB of XML in one member; a customer named in its
// letterhead and signature changes a few bytes of it, yet compressing all
// of it again cost more than inflating and scanning it together
// (docs/benchmarks.md). So the stream is written again from its own
// blocks: a block whose text, and the 32 KiB before it that its
// back-references can reach, hold no change is copied bit for bit; only
// the stretches around each change are compressed anew.

// window is how far back a back-reference reaches: distances go up to
// 32,768 bytes (RFC 1951 section 3.2.5).
const window = 32 << 10

// deflated is a member's deflate stream and where its blocks end, as the
// inflater reported them (klauspost/compress's WithEobCallback).
type deflated struct {
	comp []byte
	ends []blockEnd
	// tooMany: the stream has more blocks than maxBlocks allows, and
	// was not read to its end.
	tooMany bool
}

// maxBlocks bounds the blocks noted for text bytes: the inflater copies
// its 32 KiB window for each block it reports, and a stream of empty
// blocks (10 bits each) would make that copy a thousand times the
// stream. Word processors write blocks of tens to hundreds of KB of text
// (python-docx's zlib: about 200 KB of document XML); a stream with
// more blocks is compressed anew instead of spliced.
func maxBlocks(text int64) int { return 64 + int(text/(16<<10)) }

// blockEnd is where one block of a stream ends.
type blockEnd struct {
	bit   int64 // bits of the stream up to the block's end
	text  int   // bytes of text up to the block's end
	final bool  // BFINAL: the last block (RFC 1951 section 3.2.3)
}

// edit is one stretch of a part that a rewrite changed: old[from:to]
// became text. Between two edits the text stays as it was.
type edit struct {
	from, to int
	text     []byte
}

// applyEdits returns old with edits (in order, apart) applied.
func applyEdits(old []byte, edits []edit) []byte {
	out := make([]byte, 0, editedLen(old, edits))
	prev := 0
	for _, e := range edits {
		out = append(append(out, old[prev:e.from]...), e.text...)
		prev = e.to
	}
	return append(out, old[prev:]...)
}

// editedLen is the length of old with edits applied.
func editedLen(old []byte, edits []edit) int {
	n := len(old)
	for _, e := range edits {
		n += len(e.text) - (e.to - e.from)
	}
	return n
}

// editedCRC is the CRC-32 of old with edits applied, read in place.
func editedCRC(old []byte, edits []edit) uint32 {
	var sum uint32
	prev := 0
	for _, e := range edits {
		sum = crc32.Update(sum, crc32.IEEETable, old[prev:e.from])
		sum = crc32.Update(sum, crc32.IEEETable, e.text)
		prev = e.to
	}
	return crc32.Update(sum, crc32.IEEETable, old[prev:])
}

// readDeflated inflates a deflated member under the budget, as readMember
// does, and notes where its blocks end. It reads the member's bytes in
// data (the zip) itself, so it checks the CRC-32 as archive/zip would.
// The text is in a recycled buffer (budget.textBuf): it must not outlive
// the document being read.
func (b *budget) readDeflated(f *zip.File, data []byte) ([]byte, *deflated, error) {
	if f.Flags&0x1 != 0 {
		return nil, nil, fmt.Errorf("%w: encrypted zip member", errUnreadable)
	}
	if f.CompressedSize64 > 1<<62 || f.UncompressedSize64 > 1<<62 {
		return nil, nil, fmt.Errorf("%w: a member declares an impossible size", ErrLimit)
	}
	off, err := f.DataOffset()
	if err != nil || off < 0 || uint64(off)+f.CompressedSize64 > uint64(len(data)) {
		return nil, nil, fmt.Errorf("%w: zip member out of bounds", errUnreadable)
	}
	d, rc := inflateBlocks(data[off : off+int64(f.CompressedSize64)])
	defer rc.Close()
	before := b.expanded
	buf := b.textBuf()
	r := &declaredReader{r: rc, left: int64(f.UncompressedSize64)}
	text, err := b.expandInto(*buf, r, int64(f.CompressedSize64), int64(f.UncompressedSize64))
	if text != nil {
		*buf = text // grown, or the same memory
	}
	if d.tooMany {
		b.expanded = before // read again, counted once
		text, err := b.readMember(f)
		return text, nil, err
	}
	if err != nil {
		if !errors.Is(err, ErrLimit) && !errors.Is(err, errUnreadable) && !errors.Is(err, ErrHeld) {
			err = fmt.Errorf("%w: %w", errUnreadable, err)
		}
		return nil, nil, err
	}
	// A CRC-32 that disagrees is not checked (checksumTolerant): the text
	// inflated whole, and other readers show it.
	if n := len(d.ends); n == 0 || !d.ends[n-1].final || d.ends[n-1].text != len(text) {
		return nil, nil, fmt.Errorf("%w: deflate stream without its last block", errUnreadable)
	}
	return text, d, nil
}

// declaredReader fails as archive/zip's member reader does when a member
// inflates to more than it declares: zip.ErrFormat, an unreadable member
// (not ErrLimit, which expand would make of it).
type declaredReader struct {
	r    io.Reader
	left int64
}

func (d *declaredReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if d.left -= int64(n); d.left < 0 {
		return 0, zip.ErrFormat
	}
	return n, err
}

// inflateBlocks returns a reader of comp's text and the stream, whose
// block ends are noted as the reader reaches them. Past maxBlocks the
// reader is cut off (the inflater then fails at once) and d.tooMany set.
func inflateBlocks(comp []byte) (*deflated, io.ReadCloser) {
	d := &deflated{comp: comp}
	br := bytes.NewReader(comp)
	rc := flate.NewReaderOpts(br, flate.WithEobCallback(func(cp flate.InflateCheckpoint) {
		if d.tooMany {
			return
		}
		if len(d.ends) >= maxBlocks(cp.UncompressedOffset) {
			d.tooMany = true
			br.Reset(nil)
			return
		}
		d.ends = append(d.ends, blockEnd{bit: cp.CompressedOffset*8 + int64(cp.BitOffset),
			text: int(cp.UncompressedOffset), final: cp.Final})
	}))
	return d, rc
}

// splice returns the deflate stream of old, the text of d, with edits
// (in order, apart, each of at least one byte of old) applied.
func splice(d *deflated, old []byte, edits []edit) ([]byte, error) {
	if err := checkEdits(edits, len(old)); err != nil {
		return nil, err
	}
	if d.ends[len(d.ends)-1].text != len(old) {
		return nil, fmt.Errorf("splice: %d bytes of text for a stream of %d", len(old), d.ends[len(d.ends)-1].text)
	}
	keep := d.keep(edits)
	fw := spliceWriters.Get().(*flate.Writer)
	defer func() {
		fw.ResetDict(io.Discard, nil) // hold no reference to old
		spliceWriters.Put(fw)
	}()
	w := &bitWriter{out: make([]byte, 0, len(d.comp)+len(d.comp)/8)}
	k := 0 // the next edit to write
	for i := 0; i < len(d.ends); {
		j := i
		for j < len(d.ends) && keep[j] == keep[i] {
			j++
		}
		last := j == len(d.ends)
		if keep[i] {
			if err := w.copyBlocks(d, i, j); err != nil {
				return nil, err
			}
			if !last {
				w.stored(false, nil) // a sync block: back on a byte boundary
			}
			i = j
			continue
		}
		from, to := d.start(i).text, len(old)
		if !last {
			to = d.start(j).text
		}
		// The window before a stretch lies in a kept block's window:
		// no edit there, the old text is the new one.
		fw.ResetDict(w, old[max(from-window, 0):from])
		var err error
		if k, err = writeEdited(fw, old, edits, k, from, to); err != nil {
			return nil, err
		}
		if last {
			err = fw.Close()
		} else {
			err = fw.Flush() // ends on a byte boundary
		}
		if err != nil {
			return nil, err
		}
		i = j
	}
	if k != len(edits) {
		return nil, fmt.Errorf("splice: an edit in a kept block")
	}
	return w.finish(), nil
}

// writeEdited writes old[from:to] with the edits in it applied, from
// edits[k] on; it returns the index of the first edit not written.
func writeEdited(w io.Writer, old []byte, edits []edit, k, from, to int) (int, error) {
	p := from
	for ; k < len(edits) && edits[k].from < to; k++ {
		e := edits[k]
		if e.from < p || e.to > to {
			return k, fmt.Errorf("splice: edit %d..%d crosses a kept block", e.from, e.to)
		}
		if _, err := w.Write(old[p:e.from]); err != nil {
			return k, err
		}
		if _, err := w.Write(e.text); err != nil {
			return k, err
		}
		p = e.to
	}
	_, err := w.Write(old[p:to])
	return k, err
}

// checkEdits checks what splice relies on: edits in order and apart,
// none empty in the old text, all within it.
func checkEdits(edits []edit, oldLen int) error {
	prev := 0
	for _, e := range edits {
		if e.from < prev || e.to <= e.from || e.to > oldLen {
			return fmt.Errorf("splice: edit %d..%d out of order", e.from, e.to)
		}
		prev = e.to
	}
	return nil
}

// start is where block i starts: where the one before it ends.
func (d *deflated) start(i int) blockEnd {
	if i == 0 {
		return blockEnd{}
	}
	return d.ends[i-1]
}

// storedData returns the text of block i if it is a stored block (BTYPE
// 00, RFC 1951 section 3.2.4): its LEN and NLEN start on the byte
// boundary after its header, its text follows.
func (d *deflated) storedData(i int) ([]byte, bool, error) {
	s := d.start(i).bit
	if s+3 > int64(len(d.comp))*8 {
		return nil, false, fmt.Errorf("splice: block %d starts past the stream", i)
	}
	if bitAt(d.comp, s+1) != 0 || bitAt(d.comp, s+2) != 0 {
		return nil, false, nil
	}
	q := (s + 3 + 7) >> 3
	if q+4 > int64(len(d.comp)) {
		return nil, false, fmt.Errorf("splice: stored block %d past the stream", i)
	}
	n := int64(d.comp[q]) | int64(d.comp[q+1])<<8
	if (q+4+n)*8 != d.ends[i].bit || n != int64(d.ends[i].text-d.start(i).text) {
		return nil, false, fmt.Errorf("splice: stored block %d does not end where the inflater said", i)
	}
	return d.comp[q+4 : q+4+n], true, nil
}

// bitAt is bit p of a stream, bits numbered from the least significant
// of each byte.
func bitAt(b []byte, p int64) byte { return b[p>>3] >> uint(p&7) & 1 }

// keep tells for each block whether it can be copied: no edit touches its
// text or the window before it.
func (d *deflated) keep(edits []edit) []bool {
	keep := make([]bool, len(d.ends))
	k := 0
	for i, e := range d.ends {
		lo := max(d.start(i).text-window, 0)
		for k < len(edits) && edits[k].to <= lo {
			k++
		}
		keep[i] = k == len(edits) || edits[k].from >= e.text
	}
	return keep
}

// spliceWriters recycle the compressors: each holds several hundred KB of
// tables.
var spliceWriters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return fw
}}

// bitWriter appends a deflate stream made of copied bit ranges, empty
// stored blocks and whole bytes from the compressor. Bits are packed from
// the least significant bit of each byte (RFC 1951 section 3.1.1).
type bitWriter struct {
	out  []byte
	acc  byte // bits of the last, partial byte
	nacc uint // how many
}

// Write appends the compressor's bytes; the writer is on a byte boundary
// whenever the compressor writes (after a sync block or a flush).
func (w *bitWriter) Write(p []byte) (int, error) {
	if w.nacc != 0 {
		return 0, errors.New("splice: compressed bytes off a byte boundary")
	}
	w.out = append(w.out, p...)
	return len(p), nil
}

// copyBlocks appends blocks [i, j) of d; w is on a byte boundary. Huffman
// blocks are copied bit for bit; a stored block is written again, as its
// text must start on a byte boundary wherever the copy puts it.
func (w *bitWriter) copyBlocks(d *deflated, i, j int) error {
	for i < j {
		data, stored, err := d.storedData(i)
		if err != nil {
			return err
		}
		if stored {
			w.stored(d.ends[i].final, data)
			i++
			continue
		}
		k := i + 1
		for ; k < j; k++ {
			if _, stored, err := d.storedData(k); err != nil || stored {
				break // an error comes back at k
			}
		}
		if w.nacc != 0 { // copyBits shifts onto a byte boundary only
			return errors.New("splice: a copy off a byte boundary")
		}
		w.copyBits(d.comp, d.start(i).bit, d.ends[k-1].bit)
		i = k
	}
	return nil
}

// copyBits appends bits [from, to) of src; w is on a byte boundary.
func (w *bitWriter) copyBits(src []byte, from, to int64) {
	n := to - from
	i, sh := from>>3, uint(from&7)
	whole := n >> 3
	if sh == 0 {
		w.out = append(w.out, src[i:i+whole]...)
	} else {
		for k := i; k < i+whole; k++ {
			w.out = append(w.out, src[k]>>sh|src[k+1]<<(8-sh))
		}
	}
	rest := uint(n & 7)
	if rest == 0 {
		return
	}
	p := from + whole*8
	v := uint(src[p>>3]) >> uint(p&7)
	if uint(p&7)+rest > 8 {
		v |= uint(src[p>>3+1]) << (8 - uint(p&7))
	}
	w.acc, w.nacc = byte(v&(1<<rest-1)), rest
}

// stored appends a stored block (RFC 1951 section 3.2.4): a 3-bit header
// (BFINAL, BTYPE 00) after the bits written so far, padding to a byte
// boundary, LEN and NLEN, the text. Empty and not final, it is the sync
// block zlib's Z_SYNC_FLUSH writes.
func (w *bitWriter) stored(final bool, data []byte) {
	if final {
		w.acc |= 1 << w.nacc
	}
	w.out = append(w.out, w.acc)
	if w.nacc > 5 { // BTYPE does not fit the partial byte
		w.out = append(w.out, 0)
	}
	n := len(data)
	w.out = append(w.out, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	w.out = append(w.out, data...)
	w.acc, w.nacc = 0, 0
}

// finish returns the stream, its last partial byte padded with zeros.
func (w *bitWriter) finish() []byte {
	if w.nacc > 0 {
		w.out = append(w.out, w.acc)
		w.acc, w.nacc = 0, 0
	}
	return w.out
}
