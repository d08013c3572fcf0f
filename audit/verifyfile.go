package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// VerifyFile verifies the trail at path against its head file (when there
// is one) and the checkpoint keys that keys returns (nil: signatures are
// not checked). The offline `proxy audit verify` and the compliance API
// share it, so both judge a trail by the same rules.
func VerifyFile(ctx context.Context, path string, keys func(context.Context) (Keys, error)) (Report, error) {
	return VerifyFileProgress(ctx, path, keys, nil)
}

// VerifyFileProgress is VerifyFile that calls progress (when not nil)
// with the bytes read so far and the file's size, as it reads; ctx ends a
// verification under way.
func VerifyFileProgress(ctx context.Context, path string, keys func(context.Context) (Keys, error), progress func(done, total int64)) (Report, error) {
	var head *Head
	h, err := ReadHead(HeadPath(path))
	switch {
	case err == nil:
		head = &h
	case !errors.Is(err, os.ErrNotExist):
		return Report{}, fmt.Errorf("audit head: %w", err)
	}
	var ks Keys
	if keys != nil {
		if ks, err = keys(ctx); err != nil {
			return Report{}, fmt.Errorf("audit verification keys: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Report{}, err
	}
	return Verify(&progressReader{ctx: ctx, r: f, total: st.Size(), progress: progress}, head, ks)
}

// progressReader reports how far a verification has read, and stops it
// when its context ends.
type progressReader struct {
	ctx      context.Context
	r        io.Reader
	done     int64
	total    int64
	progress func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.progress != nil {
		p.progress(p.done, max(p.total, p.done))
	}
	return n, err
}
