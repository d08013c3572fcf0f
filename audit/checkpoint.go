package audit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// How checkpoint signing stays off the append path.
//
// A checkpoint signs (its own seq, the hash before it), and every later
// record chains to the checkpoint's hash, which covers the signature. So
// no record can follow a checkpoint before its signature exists: signing
// "in place" would stall every Append for a Vault round trip. Instead:
//
//  1. Optimistic: the caller reads the head (seq S, hash H) and signs
//     (S+1, H) without holding anything; Appends keep flowing.
//  2. It hands the signature to the writer, which takes checkpoints
//     before queued appends. If the head is still (S, H), the checkpoint
//     is written as record S+1 at once: no Append waited for the signer.
//  3. If batches moved the head meanwhile (a busy log), the writer signs
//     the new head itself while holding its turn, bounded by
//     heldSignTimeout. Appends queue (and are then written as one batch)
//     for one signing round trip, once per CheckpointEvery records.
//
// Step 3 only runs after step 1 just succeeded, so a Vault outage fails
// in step 1 and never holds up Appends; mail keeps flowing and the next
// trigger retries.

// heldSignTimeout bounds how long the writer holds Appends while it signs.
const heldSignTimeout = 2 * time.Second

// signTimeout bounds a background checkpoint's optimistic signature.
const signTimeout = 30 * time.Second

// errNothingToSign: the last record is already a checkpoint.
var errNothingToSign = errors.New("nothing to sign")

type checkpointReq struct {
	ctx  context.Context // the caller's, for the held signature
	seq  uint64
	prev string
	sig  string
	done chan error // buffered
}

// Checkpoint writes a signed checkpoint now, unless the last record is
// one already. It returns the signing or write error; the log itself
// keeps working either way.
func (l *Log) Checkpoint(ctx context.Context) error {
	if l.signer == nil {
		return ErrNoSigner
	}
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return l.checkpoint(ctx)
}

// checkpoint runs one attempt and counts and logs its outcome.
func (l *Log) checkpoint(ctx context.Context) error {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	err := l.tryCheckpoint(ctx)
	switch {
	case errors.Is(err, errNothingToSign):
		return nil
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return err // shutting down or caller gone; a timeout does count
	}
	l.metrics.checkpoint(err == nil)
	if err != nil {
		// The key ID and the error only: no record content reaches the log.
		l.logger.Warn("audit checkpoint failed; retrying at the next trigger", "key", l.signer.KeyID(), "err", err)
	}
	return err
}

func (l *Log) tryCheckpoint(ctx context.Context) error {
	head, unsigned := l.headState()
	if unsigned == 0 {
		return errNothingToSign
	}
	sig, err := l.sign(ctx, head.Seq+1, head.Hash)
	if err != nil {
		return err
	}
	req := &checkpointReq{ctx: ctx, seq: head.Seq + 1, prev: head.Hash, sig: sig, done: make(chan error, 1)}
	select {
	case l.cpReqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sign calls the Signer, turning a panic in it into an error: a broken
// signer must not stop the writer.
func (l *Log) sign(ctx context.Context, seq uint64, prev string) (sig string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sign: signer panicked: %v", p)
		}
	}()
	sig, err = l.signer.Sign(ctx, CheckpointMessage(seq, prev))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// writeCheckpoint runs in the writer goroutine.
func (l *Log) writeCheckpoint(c *checkpointReq) {
	defer func() {
		if p := recover(); p != nil {
			l.logger.Error("audit checkpoint panicked", "panic", p)
			c.done <- fmt.Errorf("checkpoint: internal error")
		}
	}()
	c.done <- l.writeCheckpointRecord(c)
}

func (l *Log) writeCheckpointRecord(c *checkpointReq) error {
	if l.failed {
		return fmt.Errorf("%w: an earlier write failed and could not be undone", ErrWrite)
	}
	if _, unsigned := l.headState(); unsigned == 0 {
		return nil
	}
	sig := c.sig
	if c.seq != l.last.Seq+1 || c.prev != l.last.Hash {
		// Step 3 above: the head moved while the caller signed.
		ctx, cancel := context.WithTimeout(c.ctx, heldSignTimeout)
		defer cancel()
		var err error
		if sig, err = l.sign(ctx, l.last.Seq+1, l.last.Hash); err != nil {
			return fmt.Errorf("re-sign moved head: %w", err)
		}
	}
	r := newAppendReq([]Record{{Event: Checkpoint, Actor: "system", Key: l.signer.KeyID(), Sig: sig}})
	l.commitSafely([]*appendReq{r})
	if err := <-r.done; err != nil {
		return err
	}
	l.nextCheckpoint = r.recs[0].Seq + l.every
	if l.onCheckpoint != nil {
		l.onCheckpoint(signedHeadOf(r.recs[0]))
	}
	return nil
}

// runCheckpoints triggers checkpoints: when the writer kicks (every
// CheckpointEvery records) and every CheckpointInterval if records were
// added since the last one. A failed attempt waits for the next trigger,
// so a Vault outage costs one attempt per trigger, not one per batch.
func (l *Log) runCheckpoints(ctx context.Context) {
	defer close(l.tickerDone)
	if l.signer == nil {
		return
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-t.C:
		}
		l.backgroundCheckpoint(ctx)
	}
}

func (l *Log) backgroundCheckpoint(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			l.logger.Error("audit checkpoint panicked", "panic", p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, signTimeout)
	defer cancel()
	_ = l.checkpoint(ctx) // counted and logged inside
}
