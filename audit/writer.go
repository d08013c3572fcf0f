package audit

import (
	"fmt"
	"time"
)

// appendReq is one Append waiting for the writer.
type appendReq struct {
	recs  []Record // filled in place by the writer
	start time.Time
	done  chan error // buffered: the writer never blocks on a caller that left
}

func newAppendReq(recs []Record) *appendReq {
	return &appendReq{recs: recs, start: time.Now(), done: make(chan error, 1)}
}

// answer reports the outcome once; a second answer (after a recovered
// panic) is dropped.
func (r *appendReq) answer(err error) {
	select {
	case r.done <- err:
	default:
	}
}

// maxBatchRecords bounds one batch, so one write stays a few MiB.
const maxBatchRecords = 8192

// lineSizeHint is a typical line length, to size a batch's buffer.
const lineSizeHint = 384

// runWriter is the only goroutine that writes the file. It takes every
// Append queued while the previous batch was being written and synced,
// and writes them with one write and one sync: group commit.
func (l *Log) runWriter() {
	defer close(l.writerDone)
	for {
		// A checkpoint goes before queued appends: it signed the current
		// head, and writing appends first would make it sign again.
		select {
		case c := <-l.cpReqs:
			l.writeCheckpoint(c)
			continue
		default:
		}
		select {
		case c := <-l.cpReqs:
			l.writeCheckpoint(c)
		case r, ok := <-l.reqs:
			if !ok {
				return
			}
			l.commitSafely(l.collect(r))
		}
	}
}

func (l *Log) collect(first *appendReq) []*appendReq {
	batch := []*appendReq{first}
	n := len(first.recs)
	for n < maxBatchRecords {
		select {
		case r, ok := <-l.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			n += len(r.recs)
		default:
			return batch
		}
	}
	return batch
}

// commitSafely turns a panic in commit into a failed log: after a bug in
// the writer nothing says the file and the head still agree.
func (l *Log) commitSafely(batch []*appendReq) {
	defer func() {
		if p := recover(); p != nil {
			l.failed = true
			l.logger.Error("audit writer panicked; refusing writes until restart", "panic", p)
			err := fmt.Errorf("%w: internal error", ErrWrite)
			l.writeErr.Store(&err)
			for _, r := range batch {
				r.answer(err)
			}
		}
	}()
	l.commit(batch)
}

// commit chains, writes and acknowledges one batch.
func (l *Log) commit(batch []*appendReq) {
	if l.failed {
		err := fmt.Errorf("%w: an earlier write failed and could not be undone; restart to recover", ErrWrite)
		l.writeErr.Store(&err)
		for _, r := range batch {
			r.answer(err)
		}
		return
	}
	buf, ends, ok := l.encode(batch)
	if len(ok) == 0 {
		return
	}
	if err := l.writeBatch(buf); err != nil {
		err = fmt.Errorf("%w: %s: %w", ErrWrite, l.path, err)
		l.writeErr.Store(&err)
		for _, r := range ok {
			r.answer(err)
		}
		return
	}
	l.writeErr.Store(nil)
	l.size += int64(len(buf))
	head := l.advance(ok)
	if err := l.head.write(head); err != nil {
		// The head only anchors Verify against a cut tail; a lagging head
		// is allowed, so this is no reason to refuse the records.
		l.metrics.writeError()
		l.logger.Warn("audit head file not updated", "path", HeadPath(l.path), "err", err)
	}
	for _, r := range ok {
		r.answer(nil)
	}
	if l.fwd != nil {
		lines := make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			lines[i] = buf[start : end-1] // without the '\n'
			start = end
		}
		l.fwd.send(lines)
	}
	if l.signer != nil && head.Seq >= l.nextCheckpoint {
		l.nextCheckpoint = head.Seq + l.every
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// encode assigns seq, time and prev to every record of the batch and
// returns the lines, the end offset of each, and the requests that encoded.
// A request with a record that cannot be encoded is answered here and
// left out whole; the others still go.
func (l *Log) encode(batch []*appendReq) (buf []byte, ends []int, ok []*appendReq) {
	now := l.now().UTC()
	seq, prev := l.last.Seq, l.last.Hash
	n := 0
	for _, r := range batch {
		n += len(r.recs)
	}
	buf = make([]byte, 0, n*lineSizeHint)
	ends = make([]int, 0, n)
	for _, r := range batch {
		mark, nEnds, seq0, prev0 := len(buf), len(ends), seq, prev
		var err error
		for i := range r.recs {
			rec := &r.recs[i]
			rec.Seq, rec.Time, rec.Prev = seq+1, now, prev
			if buf, err = appendLine(buf, rec); err != nil {
				break
			}
			ends = append(ends, len(buf))
			seq, prev = rec.Seq, rec.Hash
		}
		if err != nil {
			buf, ends, seq, prev = buf[:mark], ends[:nEnds], seq0, prev0
			r.answer(err)
			continue
		}
		ok = append(ok, r)
	}
	return buf, ends, ok
}

// advance publishes the new head after a durable batch.
func (l *Log) advance(batch []*appendReq) Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range batch {
		for i := range r.recs {
			rec := &r.recs[i]
			l.last = Head{Seq: rec.Seq, Hash: rec.Hash}
			if rec.Event == Checkpoint {
				l.unsigned = 0
			} else {
				l.unsigned++
			}
			l.metrics.recordWritten(rec.Event)
		}
	}
	return l.last
}

// writeBatch writes buf with one write and syncs it when asked. On
// failure it cuts the file back to the last acknowledged batch, so no
// record whose caller got an error stays in the trail and the next batch
// continues the chain from the last acknowledged record. If even that
// fails the log refuses all writes until restart, when Open repairs the
// tail.
func (l *Log) writeBatch(buf []byte) error {
	_, err := l.f.Write(buf)
	if err == nil && l.sync {
		if err = l.f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if err == nil {
		return nil
	}
	l.metrics.writeError()
	// The truncation need not be synced: until the next batch's sync
	// persists it, a crash can only bring back the undone records, which
	// chain correctly (or end in a partial line Open cuts).
	if undo := l.f.Truncate(l.size); undo != nil {
		l.failed = true
		l.logger.Error("audit write failed and could not be undone; refusing writes until restart",
			"path", l.path, "err", err, "undo_err", undo)
		return err
	}
	l.logger.Warn("audit write failed; batch undone", "path", l.path, "err", err)
	return err
}
