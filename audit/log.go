package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Log. Only Path is required.
type Options struct {
	// Path is the .jsonl file; the head file is HeadPath(Path). The
	// directory is created 0700 when missing.
	Path string
	// Sync fdatasyncs the file after each batch, before acknowledging it.
	// Without it a power loss can lose acknowledged records, and Open then
	// refuses a file that ends before its head (run verify).
	Sync bool
	// Signer signs checkpoints; nil writes none.
	Signer Signer
	// CheckpointEvery is the number of records between checkpoints
	// (default 10000).
	CheckpointEvery int
	// CheckpointInterval: a checkpoint after this time when records were
	// added since the last one (default 1m).
	CheckpointInterval time.Duration
	// Forward receives each line after its batch is written, in order,
	// from a goroutine of its own; nil forwards nothing. When it is an
	// io.Closer, Close (and a failed Open) closes it.
	Forward Forwarder
	Logger  *slog.Logger     // nil: discard
	Metrics *Metrics         // nil: none
	Now     func() time.Time // nil: time.Now; record times are UTC

	// OnCheckpoint is called with the trail's new signed head after each
	// checkpoint is written (also Close's), from the writer goroutine:
	// it must not block, as Appends wait meanwhile. Cluster nodes publish
	// the head with it. Nil: nothing is called.
	OnCheckpoint func(SignedHead)

	// wrapFile is the test seam for write failures: it wraps the opened
	// file before the log uses it.
	wrapFile func(logFile) logFile
}

const (
	defaultCheckpointEvery    = 10000
	defaultCheckpointInterval = time.Minute
)

// Log is an open audit trail. Its methods are safe for concurrent use.
type Log struct {
	path     string
	sync     bool
	signer   Signer
	every    uint64
	interval time.Duration
	logger   *slog.Logger
	metrics  *Metrics
	now      func() time.Time

	f       logFile
	head    *headFile
	forward Forwarder
	fwd     *forwarder // runs forward; nil without one

	reqs       chan *appendReq     // appends, to the writer goroutine
	cpReqs     chan *checkpointReq // checkpoints, taken by the writer before appends
	writerDone chan struct{}

	kick       chan struct{}      // the writer asks for a checkpoint (CheckpointEvery reached)
	bgCancel   context.CancelFunc // stops the checkpoint goroutine
	tickerDone chan struct{}

	// closeMu makes Close wait for Appends that are handing records to the
	// writer, so none is sent after the writer stops.
	closeMu sync.RWMutex
	closed  bool

	cpMu sync.Mutex // one checkpoint at a time

	mu       sync.Mutex // guards the two fields below, written by the writer
	last     Head
	unsigned uint64 // records since the last checkpoint

	writeErr atomic.Pointer[error] // the last batch's write error; nil after a success

	onCheckpoint func(SignedHead) // Options.OnCheckpoint

	// Owned by the writer goroutine.
	size           int64  // bytes of complete batches in the file
	failed         bool   // a failed batch could not be undone: refuse all writes
	nextCheckpoint uint64 // seq at which the writer kicks a checkpoint
}

// Open opens (or creates) the log at opts.Path, checks and repairs its
// tail, and writes a Started record. See the package documentation for
// what it checks.
func Open(ctx context.Context, opts Options) (_ *Log, err error) {
	if opts.Path == "" {
		return nil, errors.New("audit: Options.Path is empty")
	}
	defer func() {
		if c, ok := opts.Forward.(io.Closer); ok && err != nil {
			c.Close()
		}
	}()
	l := newLog(opts)
	f, err := openLogFile(opts.Path)
	if err != nil {
		return nil, err
	}
	l.f = osFile{f}
	if opts.wrapFile != nil {
		l.f = opts.wrapFile(l.f)
	}
	first, err := l.recover(f)
	if err == nil {
		l.head, err = openHeadFile(HeadPath(opts.Path))
	}
	if err != nil {
		l.f.Close()
		return nil, err
	}
	l.start()
	first = append(first, Record{Event: Started, Actor: "system"})
	if _, err := l.wait(ctx, l.enqueue(first)); err != nil {
		l.stop(ctx)
		return nil, fmt.Errorf("audit: write start record: %w", err)
	}
	return l, nil
}

func newLog(opts Options) *Log {
	l := &Log{
		path:     opts.Path,
		sync:     opts.Sync,
		signer:   opts.Signer,
		every:    defaultCheckpointEvery,
		interval: defaultCheckpointInterval,
		logger:   opts.Logger,
		metrics:  opts.Metrics,
		now:      opts.Now,
		forward:  opts.Forward,
	}
	l.onCheckpoint = opts.OnCheckpoint
	if opts.CheckpointEvery > 0 {
		l.every = uint64(opts.CheckpointEvery)
	}
	if opts.CheckpointInterval > 0 {
		l.interval = opts.CheckpointInterval
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// start launches the writer, the checkpoint trigger and the forwarder.
func (l *Log) start() {
	l.reqs = make(chan *appendReq, 1024)
	l.cpReqs = make(chan *checkpointReq)
	l.writerDone = make(chan struct{})
	l.kick = make(chan struct{}, 1)
	l.tickerDone = make(chan struct{})
	if l.forward != nil {
		l.fwd = startForwarder(l.forward, l.logger, l.metrics)
	}
	go l.runWriter()
	var bg context.Context
	bg, l.bgCancel = context.WithCancel(context.Background())
	go l.runCheckpoints(bg)
}

// Append writes recs as consecutive records and returns them with Seq,
// Time, Prev and Hash filled. It returns once they are in the file, and
// synced when Options.Sync is set; concurrent Appends share one write and
// one sync. An error wrapping ErrWrite means none of recs was written.
//
// When ctx ends first Append returns ctx.Err(), but records already
// handed to the writer may still be written: an audit trail may hold a
// record for an operation its caller then abandoned, never the reverse.
func (l *Log) Append(ctx context.Context, recs ...Record) ([]Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	for i := range recs {
		if err := checkRecord(i, &recs[i]); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := newAppendReq(cloneRecords(recs))
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	l.closeMu.RUnlock()
	return l.wait(ctx, r)
}

// cloneRecords copies recs deeply enough that the writer, which may still
// encode them after a cancelled Append returned, shares nothing the
// caller may change.
func cloneRecords(recs []Record) []Record {
	out := slices.Clone(recs)
	for i := range out {
		out[i].Tokens = slices.Clone(out[i].Tokens)
		out[i].Detail = maps.Clone(out[i].Detail)
	}
	return out
}

// enqueue hands records to the writer without the closed check: for
// Open and Close, which write the Started and Stopped records.
func (l *Log) enqueue(recs []Record) *appendReq {
	r := newAppendReq(recs)
	l.reqs <- r
	return r
}

func (l *Log) wait(ctx context.Context, r *appendReq) ([]Record, error) {
	select {
	case err := <-r.done:
		l.metrics.appended(time.Since(r.start))
		if err != nil {
			return nil, err
		}
		return r.recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Err reports whether an Append now would fail for a reason known in
// advance: the log is closed, or the last batch could not be written. It
// lets a caller refuse an operation before doing it, where the record
// would be written later (tokenize.CreateAuditor.Ready).
func (l *Log) Err() error {
	l.closeMu.RLock()
	closed := l.closed
	l.closeMu.RUnlock()
	if closed {
		return ErrClosed
	}
	if p := l.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Path returns the trail's file name.
func (l *Log) Path() string { return l.path }

// Head returns the last record written.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// headState returns the head and the number of records since the last
// checkpoint.
func (l *Log) headState() (Head, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last, l.unsigned
}

// Close writes a Stopped record and, with a Signer, a final checkpoint,
// then closes the files (releasing the lock). Appends after Close return
// ErrClosed. ctx bounds the waits; the files are closed in any case.
func (l *Log) Close(ctx context.Context) error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.closeMu.Unlock()

	// Stop the background trigger first, so the checkpoint below is the
	// last record.
	l.bgCancel()
	<-l.tickerDone

	var errs []error
	if _, err := l.wait(ctx, l.enqueue([]Record{{Event: Stopped, Actor: "system"}})); err != nil {
		errs = append(errs, fmt.Errorf("audit: write stop record: %w", err))
	} else if l.signer != nil {
		if err := l.checkpoint(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit: final checkpoint: %w", err))
		}
	}
	errs = append(errs, l.stop(ctx))
	return errors.Join(errs...)
}

// stop ends the goroutines and closes the files. The writer first writes
// whatever is still queued.
func (l *Log) stop(ctx context.Context) error {
	l.bgCancel()
	<-l.tickerDone
	close(l.reqs)
	<-l.writerDone
	var errs []error
	if l.fwd != nil {
		if err := l.fwd.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit: forwarder: %w", err))
		}
	}
	if c, ok := l.forward.(io.Closer); ok {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close forwarder: %w", err))
		}
	}
	if err := l.head.close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close head: %w", err))
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close: %w", err))
	}
	return errors.Join(errs...)
}
