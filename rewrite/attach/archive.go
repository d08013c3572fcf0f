package attach

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// zipArchive rewrites the members of a zip, each by its own kind, and
// writes the zip again if any changed. A member that cannot be read
// (encrypted, an unsupported method) follows the unreadable policy.
func (r *Rewriter) zipArchive(ctx context.Context, b *budget, zr *zip.Reader, data []byte, depth int) ([]byte, bool, error) {
	changed := map[int]newMember{}
	for i, f := range zr.File {
		if err := b.member(); err != nil {
			return nil, false, err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		out, ch, err := r.zipMember(ctx, b, f, depth)
		if err != nil {
			return nil, false, err
		}
		if ch {
			changed[i] = newMember{data: out}
		}
	}
	if len(changed) == 0 {
		return data, false, nil
	}
	out, err := repackZip(zr, data, changed)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func (r *Rewriter) zipMember(ctx context.Context, b *budget, f *zip.File, depth int) ([]byte, bool, error) {
	kind := byName(f.Name)
	if kind == KindMedia || kind == KindPDF && r.opts.PDF == nil { // a PDF is read where it can be (pdf.go)
		if err := checkDeclared(b, f); err != nil {
			return nil, false, err
		}
		if err := r.decide(kind); !errors.Is(err, errPass) {
			return nil, false, err
		}
		return nil, false, nil
	}
	data, err := b.readMember(f)
	if errors.Is(err, errUnreadable) {
		if err := r.unreadable(); !errors.Is(err, errPass) {
			return nil, false, err
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return r.member(ctx, b, kind, f.Name, data, depth)
}

// gzipArchive rewrites the file inside a gzip (RFC 1952), a tar or any
// other kind, and compresses it again with the same header if it changed.
func (r *Rewriter) gzipArchive(ctx context.Context, b *budget, name string, data []byte, depth int) ([]byte, bool, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, false, fmt.Errorf("%w: gzip: %w", errUnreadable, err)
	}
	if err := b.member(); err != nil {
		return nil, false, err
	}
	inner, err := b.expand(zr, int64(len(data)), -1)
	if err != nil {
		return nil, false, err
	}
	innerName := zr.Header.Name
	if innerName == "" {
		innerName = gunzippedName(name)
	}
	out, changed, err := r.member(ctx, b, byName(innerName), innerName, inner, depth)
	if err != nil || !changed {
		return data, false, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // a valid level: no error
	zw.Header = zr.Header
	zw.Write(out) // into memory: only the header can fail, at Close
	if err := zw.Close(); err != nil {
		return nil, false, fmt.Errorf("%w: gzip header: %w", errUnreadable, err)
	}
	return buf.Bytes(), true, nil
}

// gunzippedName is what gzip -d would name the file.
func gunzippedName(name string) string {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".tgz"):
		return name[:len(name)-4] + ".tar"
	case strings.HasSuffix(lower, ".gz"):
		return name[:len(name)-3]
	}
	return strings.TrimSuffix(name, path.Ext(name))
}

// tarEntry is one member of a tar being rewritten.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// tarArchive rewrites the regular files of a tar, each by its own kind,
// and writes the tar again if any changed. Its bytes are already in
// memory (and counted, if a gzip expanded them): members cost no budget
// but their count.
func (r *Rewriter) tarArchive(ctx context.Context, b *budget, data []byte, depth int) ([]byte, bool, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var entries []tarEntry
	anyChanged := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: tar: %w", errUnreadable, err)
		}
		if err := b.member(); err != nil {
			return nil, false, err
		}
		e := tarEntry{hdr: hdr}
		if hdr.Typeflag == tar.TypeReg {
			body, err := io.ReadAll(io.LimitReader(tr, int64(len(data))))
			if err != nil {
				return nil, false, fmt.Errorf("%w: tar: %w", errUnreadable, err)
			}
			out, changed, err := r.member(ctx, b, byName(hdr.Name), hdr.Name, body, depth)
			if err != nil {
				return nil, false, err
			}
			e.data = body
			if changed {
				e.data, anyChanged = out, true
			}
		}
		entries = append(entries, e)
	}
	if !anyChanged {
		return data, false, nil
	}
	return writeTar(entries)
}

func writeTar(entries []tarEntry) ([]byte, bool, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg {
			e.hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, false, fmt.Errorf("%w: tar header: %w", errUnreadable, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, false, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, false, err
	}
	return buf.Bytes(), true, nil
}
