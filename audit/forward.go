package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Forwarder sends each durable line to an external copy (syslog, a SIEM).
// It is best effort: an error is counted and logged, never returned to
// Append.
type Forwarder interface{ Forward(line []byte) error }

// forwardQueue is how many batches may wait for the forwarder. When a
// slow syslog server fills it, batches are dropped (and counted) rather
// than holding up the writer: the file, not the copy, is the trail.
const forwardQueue = 1024

// forwardLogEvery limits forwarding error logs: a dead syslog server must
// not flood the log with one line per record.
const forwardLogEvery = time.Minute

// forwarder runs the Forwarder in its own goroutine, off the commit path.
type forwarder struct {
	fw      Forwarder
	logger  *slog.Logger
	metrics *Metrics
	batches chan [][]byte
	done    chan struct{}

	mu         sync.Mutex // guards the rate limit below
	lastLog    time.Time
	suppressed int
}

func startForwarder(fw Forwarder, logger *slog.Logger, m *Metrics) *forwarder {
	f := &forwarder{
		fw: fw, logger: logger, metrics: m,
		batches: make(chan [][]byte, forwardQueue),
		done:    make(chan struct{}),
	}
	go f.run()
	return f
}

// send queues the lines of a durable batch, without their '\n'.
func (f *forwarder) send(lines [][]byte) {
	select {
	case f.batches <- lines:
	default:
		f.failed(len(lines), "forward queue full, lines dropped", nil)
	}
}

func (f *forwarder) run() {
	defer close(f.done)
	for lines := range f.batches {
		f.forward(lines)
	}
}

func (f *forwarder) forward(lines [][]byte) {
	defer func() {
		if p := recover(); p != nil {
			f.logger.Error("audit forwarder panicked", "panic", p)
		}
	}()
	for _, line := range lines {
		if err := f.fw.Forward(line); err != nil {
			f.failed(1, "forward failed", err)
		}
	}
}

func (f *forwarder) failed(n int, msg string, err error) {
	f.metrics.forwardError(n)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suppressed += n
	now := time.Now()
	if now.Sub(f.lastLog) < forwardLogEvery {
		return
	}
	attrs := []any{"lines", f.suppressed}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	f.logger.Warn("audit "+msg, attrs...)
	f.lastLog, f.suppressed = now, 0
}

// close waits until queued lines are forwarded or ctx ends.
func (f *forwarder) close(ctx context.Context) error {
	close(f.batches)
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
