package attach

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/tokenproxy/tokenproxy/rewrite/scan"
)

// isPackage tells an office package from a plain zip: OPC packages (OOXML,
// ECMA-376 part 2 section 10.1.2) hold [Content_Types].xml, OpenDocument
// packages (ODF 1.2 part 3 section 3.3) a mimetype member.
func isPackage(zr *zip.Reader) bool {
	for _, f := range zr.File {
		if f.Name == "[Content_Types].xml" || f.Name == "mimetype" {
			return true
		}
	}
	return false
}

// isSignature names the members that sign a package: OOXML's digital
// signature origin and parts (ECMA-376 part 2 section 13), ODF's
// document and macro signatures (ODF 1.2 part 3 section 5).
func isSignature(name string) bool {
	return strings.HasPrefix(name, "_xmlsignatures/") ||
		name == "META-INF/documentsignatures.xml" || name == "META-INF/macrosignatures.xml"
}

// isXMLPart names the members read as XML: every .xml part (document body,
// shared strings, slides, comments, properties, ODF content and meta),
// relationship parts (hyperlink and mailto: targets) and VML drawings.
func isXMLPart(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".xml", ".rels", ".vml":
		return true
	}
	return false
}

// office rewrites the members of an office package and writes the package
// again if any changed. A signed package that would change follows the
// signed kind's policy: its signature would no longer verify.
func (r *Rewriter) office(ctx context.Context, b *budget, zr *zip.Reader, data []byte, depth int) ([]byte, bool, error) {
	defer b.release(len(b.texts)) // the parts read are written by now
	changed := map[int]newMember{}
	signed := false
	for i, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if err := b.member(); err != nil {
			return nil, false, err
		}
		if isSignature(f.Name) {
			signed = true
		}
		out, ch, err := r.officeMember(ctx, b, f, data, depth)
		if err != nil {
			return nil, false, err
		}
		if ch {
			changed[i] = out
		}
	}
	if len(changed) == 0 {
		return data, false, nil
	}
	if signed {
		if err := r.decide(KindSigned); err != nil {
			return nil, false, fmt.Errorf("a signed document: %w", err)
		}
	}
	for i, f := range zr.File {
		if _, ok := changed[i]; !ok && isThumbnail(f.Name) {
			if blank := blankThumbnail(f.Name); blank != nil {
				changed[i] = newMember{data: blank} // thumbnail.go
			}
		}
	}
	out, err := repackZip(zr, data, changed)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// officeMember rewrites one member: XML parts as markup, embedded
// documents and archives recursively, pictures kept (they are the
// document's own, whatever the media policy says of attachments), other
// binaries (OLE objects, macros) by the unreadable policy. zipData is
// the whole package, where a deflated XML part's stream is kept for
// splicing (splice.go).
func (r *Rewriter) officeMember(ctx context.Context, b *budget, f *zip.File, zipData []byte, depth int) (newMember, bool, error) {
	if f.FileInfo().IsDir() || isSignature(f.Name) {
		return newMember{}, false, nil
	}
	kind := byName(f.Name)
	if kind == KindMedia {
		return newMember{}, false, checkDeclared(b, f)
	}
	if isXMLPart(f.Name) && f.Method == zip.Deflate {
		return r.deflatedXML(b, f, zipData)
	}
	data, err := b.readMember(f)
	if err != nil {
		return newMember{}, false, err // an unreadable part: the whole document is unreadable
	}
	var out []byte
	var changed bool
	switch {
	case isXMLPart(f.Name):
		out, changed, err = rewriteXML(data, r.opts.Addr)
	case kind == KindUnknown && Sniff(data) == KindText:
		// The document's own text (ODF's mimetype, say): part of the
		// document, under the office policy, not the text one.
		out, changed, err = scan.ReplaceAddresses(scan.TextPlain, data, r.opts.Addr)
	default:
		out, changed, err = r.member(ctx, b, kind, f.Name, data, depth)
	}
	return newMember{data: out}, changed, err
}

// deflatedXML reads and rewrites a deflated XML part, keeping its stream
// and what changed in it: repackZip splices the new stream from the old.
func (r *Rewriter) deflatedXML(b *budget, f *zip.File, zipData []byte) (newMember, bool, error) {
	data, src, err := b.readDeflated(f, zipData)
	if err != nil {
		return newMember{}, false, err // an unreadable part: the whole document is unreadable
	}
	edits, err := rewriteXMLEdits(data, r.opts.Addr)
	if err != nil || len(edits) == 0 {
		return newMember{}, false, err
	}
	if src == nil { // too many blocks to splice: compressed anew
		return newMember{data: applyEdits(data, edits)}, true, nil
	}
	return newMember{src: src, orig: data, edits: edits}, true, nil
}

// member handles a member other than an office XML part: as content of
// its own kind, with pass (kept as it is) and strip (the attachment that
// holds it is stripped) decided for it.
func (r *Rewriter) member(ctx context.Context, b *budget, kind Kind, name string, data []byte, depth int) ([]byte, bool, error) {
	_, out, changed, err := r.content(ctx, b, kind, name, data, depth)
	if errors.Is(err, errPass) {
		return nil, false, nil
	}
	return out, changed, err
}

// checkDeclared holds a member that is kept unread to the limits it
// declares: a bomb is refused even where it is not opened.
func checkDeclared(b *budget, f *zip.File) error {
	limit := b.lim.MaxExpandedBytes - b.expanded
	if f.UncompressedSize64 > uint64(max(limit, 0)) {
		return fmt.Errorf("%w: a member declares %d bytes expanded", ErrLimit, f.UncompressedSize64)
	}
	if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64/max(f.CompressedSize64, 1) > uint64(b.lim.MaxRatio) {
		return fmt.Errorf("%w: a member declares an expansion ratio over %d", ErrLimit, b.lim.MaxRatio)
	}
	return nil
}
