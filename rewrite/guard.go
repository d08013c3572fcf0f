package rewrite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

// guardBufSize is how much of a guarded rewrite's output is held in memory
// before it streams, and the size of the batches it then streams in.
const guardBufSize = 32 << 10

// withGuard runs fn with a writer whose output reaches dst only through the
// leak guard (see guardedOutput). It returns fn's error, else the guard's.
func (rw *Rewriter) withGuard(ctx context.Context, dst io.Writer, fn func(io.Writer) error) error {
	out := &guardedOutput{rw: rw, ctx: ctx, dst: dst}
	return out.finish(fn(out))
}

// guardedOutput is the writer of a guarded rewrite. While the output fits
// in guardBufSize (most mail), it is held in memory, and the guard checks
// all of it in the caller's goroutine before the first byte goes to dst.
// A larger output streams: the guard then walks it in its own goroutine as
// it is written, in guardBufSize batches to dst and to the guard, and its
// verdict comes before finish returns, so the caller still withholds the
// end of the message (the SMTP routes' final dot) from a refused one.
//
// Holding small messages saves, per message, a goroutine with its stack
// growth and the hand-offs through a pipe, which cost more than the guard's
// own walk. Either way the guard reads every byte that reaches dst.
type guardedOutput struct {
	rw  *Rewriter
	ctx context.Context
	dst io.Writer
	buf *[]byte // the output so far, while it is held; from heldBufs

	// Streaming, once the output outgrew buf.
	bw      *bufio.Writer // batches into dst and the guard's pipe
	pw      *io.PipeWriter
	verdict chan error
}

// heldBufs and guardBufs recycle the buffers of guarded rewrites: fresh
// ones cost their zeroing and collection on every message.
var (
	heldBufs  = sync.Pool{New: func() any { b := make([]byte, 0, guardBufSize); return &b }}
	guardBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, guardBufSize) }}
)

func (o *guardedOutput) Write(p []byte) (int, error) {
	if o.bw == nil {
		if o.buf == nil {
			o.buf = heldBufs.Get().(*[]byte)
		}
		if b := *o.buf; len(b)+len(p) <= cap(b) {
			*o.buf = append(b, p...)
			return len(p), nil
		}
		if err := o.stream(); err != nil {
			return 0, err
		}
	}
	return o.bw.Write(p)
}

// stream starts the guard in its own goroutine and passes what was held to
// dst and to the guard.
func (o *guardedOutput) stream() error {
	pr, pw := io.Pipe()
	o.pw, o.verdict = pw, make(chan error, 1)
	go func() {
		err := o.rw.guard(o.ctx, pr)
		io.Copy(io.Discard, pr) // an early verdict must not block the writer
		o.verdict <- err
	}()
	o.bw = guardBufs.Get().(*bufio.Writer)
	o.bw.Reset(io.MultiWriter(o.dst, pw))
	_, err := o.bw.Write(*o.buf)
	o.releaseHeld()
	return err
}

// finish ends the output; err is the rewrite's result. A held output goes
// to dst only if the rewrite succeeded and the guard passed it.
func (o *guardedOutput) finish(err error) error {
	if o.bw == nil {
		defer o.releaseHeld()
		if err != nil {
			return err
		}
		var held []byte
		if o.buf != nil {
			held = *o.buf
		}
		if err := o.rw.guard(o.ctx, bytes.NewReader(held)); err != nil {
			return err
		}
		_, err := o.dst.Write(held)
		return err
	}
	if err == nil {
		err = o.bw.Flush()
	}
	o.bw.Reset(nil)
	guardBufs.Put(o.bw)
	o.pw.CloseWithError(err)
	gerr := <-o.verdict
	if err != nil {
		return err
	}
	return gerr
}

// releaseHeld gives the held buffer back, once nothing reads it.
func (o *guardedOutput) releaseHeld() {
	if o.buf == nil {
		return
	}
	*o.buf = (*o.buf)[:0]
	heldBufs.Put(o.buf)
	o.buf = nil
}

// guard runs the leak guard over src, with room for the growth tokens
// cause; a panic in it refuses the message.
func (rw *Rewriter) guard(ctx context.Context, src io.Reader) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: guard failed: %v", ErrLeak, r)
		}
	}()
	g := *rw
	g.opts.Limits = guardLimits(rw.opts.Limits)
	return g.Guard(ctx, src)
}

// guardLimits leave room for growth: tokens are longer than most
// addresses, and the input was already held to the limits.
func guardLimits(l Limits) Limits {
	l.MaxMessageBytes *= 2
	l.MaxHeaderBytes *= 2
	l.MaxTextPartBytes *= 2
	return l
}
