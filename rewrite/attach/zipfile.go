package attach

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
)

// openZip opens a zip held in memory. The count of central directory
// entries is checked before archive/zip parses them, so a directory of a
// million entries costs a byte search, not a million headers in memory.
func (b *budget) openZip(data []byte) (*zip.Reader, error) {
	if n := bytes.Count(data, []byte("PK\x01\x02")); b.members+n > b.lim.MaxMembers {
		return nil, fmt.Errorf("%w: more than %d archive members", ErrLimit, b.lim.MaxMembers)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: zip: %w", errUnreadable, err) // truncated, damaged, not a zip
	}
	// klauspost/compress's inflate, as its deflate in repackZip: the
	// standard library's is the larger part of a text-heavy document's
	// cost (docs/benchmarks.md). Same format, same bounds (budget.expand).
	zr.RegisterDecompressor(zip.Deflate, flate.NewReader)
	return zr, nil
}

// readMember decompresses one member under the budget. Encrypted members
// (APPNOTE 4.4.4 bit 0) and methods archive/zip lacks are unreadable.
func (b *budget) readMember(f *zip.File) ([]byte, error) {
	if f.Flags&0x1 != 0 {
		return nil, fmt.Errorf("%w: encrypted zip member", errUnreadable)
	}
	if f.CompressedSize64 > 1<<62 || f.UncompressedSize64 > 1<<62 {
		return nil, fmt.Errorf("%w: a member declares an impossible size", ErrLimit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: zip member: %w", errUnreadable, err)
	}
	defer rc.Close()
	data, err := b.expand(checksumTolerant{rc}, int64(f.CompressedSize64), int64(f.UncompressedSize64))
	if err != nil && !errors.Is(err, ErrLimit) && !errors.Is(err, errUnreadable) && !errors.Is(err, ErrHeld) {
		err = fmt.Errorf("%w: %w", errUnreadable, err)
	}
	return data, err
}

// checksumTolerant reads a member whose CRC-32 disagrees (with its
// content, or its data descriptor with the central directory) as if it
// agreed: its bytes decompressed whole, and other readers show them (unzip
// warns and extracts; a repack that copies the member writes the central
// directory's CRC into a fresh local header, and the disagreement is
// gone). So they are scanned like any member's, never passed unread.
type checksumTolerant struct{ r io.Reader }

func (c checksumTolerant) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, zip.ErrChecksum) {
		err = io.EOF
	}
	return n, err
}

// newMember is the new content of a changed member; for a deflated
// XML part instead its stream and text before and the edits, which
// repackZip splices into the new stream (splice.go).
type newMember struct {
	data  []byte
	src   *deflated
	orig  []byte
	edits []edit
}

// repackZip writes the archive again with the members of changed (by
// index) replaced, in their order; every other member is copied as it is
// stored, compressed bytes and all. Changed members keep their name, time,
// comment, attributes and method (Store stays Store, as ODF's mimetype
// must).
func repackZip(zr *zip.Reader, data []byte, changed map[int]newMember) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data) + len(data)/8) // changed members grow a little
	zw := zip.NewWriter(&out)
	// Speed over size: a rewritten member is recompressed on the mail
	// path. klauspost/compress at BestSpeed deflates 10 MB of document
	// XML in about half the standard library's time; a text-only
	// document compressed whole comes out about 1.3 times the size a
	// word processor's default level gave it (docs/benchmarks.md). A
	// deflated XML part is spliced instead (splice.go): only the blocks
	// around its changes are compressed again, at this level.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestSpeed)
	})
	if err := zw.SetComment(zr.Comment); err != nil {
		return nil, err
	}
	for i, f := range zr.File {
		m, ok := changed[i]
		if !ok {
			if err := zw.Copy(f); err != nil {
				// A member that was not read is damaged: so is the zip.
				return nil, fmt.Errorf("%w: zip member: %w", errUnreadable, err)
			}
			continue
		}
		if m.src != nil {
			comp, err := splice(m.src, m.orig, m.edits)
			if err == nil {
				if err := writeSpliced(zw, f, m, comp); err != nil {
					return nil, err
				}
				continue
			}
			// A stream the splice cannot follow is compressed anew:
			// splicing only saves time.
			m.data = applyEdits(m.orig, m.edits)
		}
		fh := &zip.FileHeader{Name: f.Name, Comment: f.Comment, NonUTF8: f.NonUTF8, Method: f.Method,
			Modified: f.Modified, ModifiedTime: f.ModifiedTime, ModifiedDate: f.ModifiedDate,
			CreatorVersion: f.CreatorVersion, ExternalAttrs: f.ExternalAttrs}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(m.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// writeSpliced writes a changed deflated member, comp its stream spliced
// from the old one. The CRC-32 and both sizes go in the local header
// (APPNOTE 4.3.7), so no data descriptor follows; a UTF-8 name keeps its
// flag (bit 11).
func writeSpliced(zw *zip.Writer, f *zip.File, m newMember, comp []byte) error {
	fh := &zip.FileHeader{Name: f.Name, Comment: f.Comment, NonUTF8: f.NonUTF8, Method: zip.Deflate,
		Flags: f.Flags & 0x800, ModifiedTime: f.ModifiedTime, ModifiedDate: f.ModifiedDate,
		CreatorVersion: f.CreatorVersion&0xff00 | 20, ReaderVersion: 20, ExternalAttrs: f.ExternalAttrs,
		CRC32: editedCRC(m.orig, m.edits), CompressedSize64: uint64(len(comp)),
		UncompressedSize64: uint64(editedLen(m.orig, m.edits))}
	w, err := zw.CreateRaw(fh)
	if err != nil {
		return err
	}
	_, err = w.Write(comp)
	return err
}
