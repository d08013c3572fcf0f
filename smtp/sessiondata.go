package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/mailauth"
	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// errDataEnded stops the rewriting goroutine once the downstream side has
// finished (or failed): its writes into the pipe fail with it.
var errDataEnded = errors.New("smtp: downstream data ended")

// dataResult is what one DATA produced, for the log and the metrics.
type dataResult struct {
	report  *rewrite.Report
	created int // tokens the message created (committed)
	bytesIn int64
	relay   time.Duration // end of the client's data to the downstream's reply
	// auth holds the inbound route's verdicts (nil without auth_check), and
	// authRemoved the incoming Authentication-Results fields that claimed
	// our authserv-id.
	auth        *mailauth.Verdicts
	authRemoved int
	// authResults is the value of our Authentication-Results field, which
	// an ARC seal repeats; arcSealed the instance of our seal (0: none).
	authResults string
	arcSealed   int
	// undo removes what the message left before its final dot that a
	// refused message must not leave (the quarantined originals); nil:
	// nothing.
	undo func()
}

// Data reads the message through the strict reader, rewrites it and
// relays it to the downstream transaction: streamed as it is rewritten, or
// spooled first where the whole message must be read before its first
// byte can be written (the inbound verdicts, the outbound signature). The
// client gets 250 only after the downstream's 250 for the rewritten
// message, and any failure before the end aborts the downstream without
// the final dot (DESIGN.md invariant 2). It is called for DATA and for BDAT.
func (s *session) Data(r io.Reader) error {
	if s.txn == nil || s.broken {
		return s.reply("data", errTxnBroken)
	}
	limits := s.cfg.limits
	// go-smtp's read deadline was set for the DATA command line; the
	// whole transfer gets data_timeout instead (slow senders are bounded,
	// large messages are not cut off by the per-command timeout).
	s.setDataDeadline(time.Now().Add(limits.DataTimeout))
	ctx, cancel := context.WithTimeout(s.r.ctx, limits.DataTimeout)
	defer cancel()

	res, err := s.relay(ctx, r)
	// Txn.Data ends the downstream transaction either way; a message
	// refused before it (bare line ending, DMARC, a failed signature) is
	// aborted here: the downstream never sees a dot.
	s.txn.Abort()
	s.txn = nil
	if err != nil && res.undo != nil {
		res.undo() // DESIGN.md invariant 4
	}
	s.logMessage(res, err)
	return s.reply("data", err)
}

// relay reads the client's data through the strict reader, lets the route
// prepare it (the inbound route verifies it into a spool), then rewrites
// and relays it: streamed, or spooled and sealed when the route signs.
func (s *session) relay(ctx context.Context, r io.Reader) (dataResult, error) {
	strict := NewStrictDataMaxLine(r, s.cfg.limits.MaxLineLength)
	defer strict.release() // the rewriter has returned: nothing reads it any more
	counted := &countingReader{r: strict}
	var res dataResult
	err := s.prepareAndRelay(ctx, counted, &res)
	res.bytesIn = counted.n
	return res, err
}

func (s *session) prepareAndRelay(ctx context.Context, in io.Reader, res *dataResult) error {
	src, cleanup, err := s.cfg.policy.prepare(ctx, s, in, res)
	if err != nil {
		return err
	}
	defer cleanup()
	if seal := s.cfg.policy.sealer(res); seal != nil {
		return s.relaySealed(ctx, src, seal, res)
	}
	return s.relayStreamed(ctx, src, res)
}

// relayStreamed rewrites the message in the session's goroutine into a
// relayOutput, which sends it downstream once rewritten, or streams it
// there as it is rewritten when it is large.
func (s *session) relayStreamed(ctx context.Context, src io.Reader, res *dataResult) error {
	out := &relayOutput{s: s, ctx: ctx, res: res}
	return out.finish(s.rewrite(ctx, out, src, res))
}

// relayHoldBytes is how much rewritten message a relayOutput holds before
// it streams: most mail fits.
const relayHoldBytes = 32 << 10

// relayOutput is the writer the rewriter writes to. It holds the rewritten
// message in memory while it fits in relayHoldBytes and sends it downstream
// only after the rewrite (and its leak guard) returned nil: for most mail
// the session's goroutine does it all, without a second goroutine and the
// hand-offs of a pipe between the two, which cost more CPU per message than
// the overlap of rewriting and relaying saves. A larger message streams:
// the downstream DATA starts in a goroutine of its own, which reads what
// was held and then the rest through a pipe as it is rewritten. Either
// way the final dot is sent only once the rewrite has returned nil
// (DESIGN.md invariant 2).
type relayOutput struct {
	s   *session
	ctx context.Context
	res *dataResult

	held *[]byte // from heldMessages; nil until the first write
	// whole holds a message that outgrew held for a hop whose answer
	// depends on all of it (downstream.Txn.WholeFirst): it is prechecked
	// complete before its tokens are committed, then sent.
	whole []byte

	// Streaming, once the message outgrew held.
	pw   *io.PipeWriter
	sent chan error // the downstream side's result
	// utf8Refusal is the transaction's answer, asked before it streamed,
	// to a message whose MIME part header needs SMTPUTF8 (precheck).
	utf8Refusal error
}

// heldMessages recycles relayOutput's buffers: a fresh 32 KiB per message
// costs its zeroing and collection.
var heldMessages = sync.Pool{New: func() any { b := make([]byte, 0, relayHoldBytes); return &b }}

func (o *relayOutput) Write(p []byte) (int, error) {
	switch {
	case o.pw != nil:
		return o.pw.Write(p)
	case o.whole != nil:
		o.whole = append(o.whole, p...)
		return len(p), nil
	}
	if o.held == nil {
		o.held = heldMessages.Get().(*[]byte)
	}
	if b := *o.held; len(b)+len(p) <= cap(b) {
		*o.held = append(b, p...)
		return len(p), nil
	}
	if o.s.txn != nil && o.s.txn.WholeFirst() {
		// The hop lacks 8BITMIME: its Data would read the whole message
		// before sending anyway, and an 8-bit body may be refused (policy
		// eight_bit: refuse) or fail to convert. Holding it lets precheck
		// say so before the tokens are committed (DESIGN.md invariant 4).
		b := *o.held
		o.whole = append(make([]byte, 0, 2*(len(b)+len(p))), b...)
		o.whole = append(o.whole, p...)
		o.release()
		return len(p), nil
	}
	o.stream()
	return o.pw.Write(p)
}

// stream starts the downstream DATA in its own goroutine; its writes fail
// with errDataEnded once that side has ended.
func (o *relayOutput) stream() {
	if o.s.txn != nil {
		o.utf8Refusal = o.s.txn.UTF8Refusal()
	}
	pr, pw := io.Pipe()
	o.pw, o.sent = pw, make(chan error, 1)
	held := *o.held // released by finish, after the goroutine has ended
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				o.s.log.Error("panic while relaying a message", "event", "panic", "panic", fmt.Sprint(p))
				err = fmt.Errorf("smtp: relay panic")
			}
			pr.CloseWithError(errDataEnded)
			o.sent <- err
		}()
		err = o.s.send(o.ctx, io.MultiReader(bytes.NewReader(held), pr), o.res)
	}()
}

// finish ends the relay; rwErr is the rewrite's result. It returns the
// first real error: the rewrite's rather than its echo through the pipe.
func (o *relayOutput) finish(rwErr error) error {
	defer o.release()
	if o.pw == nil {
		if rwErr != nil {
			return rwErr
		}
		return o.s.send(o.ctx, bytes.NewReader(o.message()), o.res)
	}
	o.pw.CloseWithError(rwErr) // nil: EOF, the downstream sends the dot
	err := <-o.sent
	if err != nil && rwErr != nil && !errors.Is(rwErr, errDataEnded) {
		err = rwErr
	}
	return err
}

// message is what was held, when the message did not stream.
func (o *relayOutput) message() []byte {
	switch {
	case o.whole != nil:
		return o.whole
	case o.held != nil:
		return *o.held
	}
	return nil
}

// release gives the held buffer back, once nothing reads it.
func (o *relayOutput) release() {
	if o.held != nil {
		*o.held = (*o.held)[:0]
		heldMessages.Put(o.held)
		o.held = nil
	}
}

// relaySealed rewrites the whole message into a spool, computes the field
// that goes on top of it (a DKIM signature covers the whole body, RFC 6376
// §3.7, and precedes it), then relays field and message. The downstream
// DATA starts only then, so a message that cannot be sealed (Vault down)
// relays nothing; and its new tokens are committed only once it is sealed,
// so it leaves none behind either (DESIGN.md invariant 4).
func (s *session) relaySealed(ctx context.Context, src io.Reader, seal sealFunc, res *dataResult) error {
	sp := newSpool(s.r.opts.SpoolDir, spoolMemBytes)
	defer sp.Close()
	if err := s.rewriteOnly(ctx, sp, src, res); err != nil {
		return err
	}
	msg, err := sp.Reader()
	if err != nil {
		return err
	}
	out, err := seal(ctx, msg)
	if err != nil {
		return err
	}
	// Before the reader below: the spool's readers share one file offset.
	if err := s.precheckSpooled(sp, res.report); err != nil {
		return err
	}
	if msg, err = sp.Reader(); err != nil {
		return err
	}
	if out.filter != nil {
		if msg, err = out.filter(msg); err != nil {
			return err
		}
	}
	if err := s.commit(ctx, res); err != nil {
		return err
	}
	return s.send(ctx, io.MultiReader(strings.NewReader(out.fields), msg), res)
}

// send streams the message to the downstream transaction and observes the
// relay latency.
func (s *session) send(ctx context.Context, msg io.Reader, res *dataResult) error {
	var inputEnd time.Time
	err := s.txn.Data(ctx, &endMarker{r: msg, at: &inputEnd})
	if !inputEnd.IsZero() {
		res.relay = time.Since(inputEnd)
		s.r.opts.Metrics.RelayLatency(s.r.opts.Name, res.relay)
	}
	return err
}

// rewrite is rewriteOnly, then commit: for a message relayed as it is
// rewritten.
func (s *session) rewrite(ctx context.Context, dst io.Writer, src io.Reader, res *dataResult) error {
	if err := s.rewriteOnly(ctx, dst, src, res); err != nil {
		return err
	}
	return s.commit(ctx, res)
}

// rewriteOnly writes the trace field, then the rewritten message, then
// makes sure the client's data was read to its end: a bare CR or LF after
// the last MIME part must be refused too (SMTP smuggling).
func (s *session) rewriteOnly(ctx context.Context, dst io.Writer, src io.Reader, res *dataResult) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic while rewriting a message", "event", "panic", "panic", fmt.Sprint(p))
			err = fmt.Errorf("smtp: rewriter panic")
		}
	}()
	if _, err := io.WriteString(dst, s.received()); err != nil {
		return err
	}
	rep, err := s.cfg.policy.rewrite(ctx, s, dst, src)
	res.report = rep
	if err != nil {
		return err
	}
	if err := drain(src); err != nil {
		return err
	}
	return precheck(dst, rep)
}

// commit makes the message's new tokens durable and writes its audit
// record, once it passed every check and before the downstream's final
// dot (DESIGN.md invariants 3 and 4).
func (s *session) commit(ctx context.Context, res *dataResult) error {
	if err := s.cfg.policy.commit(ctx, s, res); err != nil {
		return err
	}
	return s.auditMessage(ctx, res)
}

// drain reads src to its end. io.Copy would call the WriteTo of the
// inbound route's io.MultiReader, which allocates 32 KiB per call (per
// message, for the few bytes usually left); io.Discard's ReadFrom reads
// through a pooled buffer instead.
func drain(src io.Reader) error {
	_, err := io.Discard.(io.ReaderFrom).ReadFrom(src)
	return err
}

// logMessage writes the one line per transaction: counts, tokens and
// outcome, never an address (DESIGN.md invariant 1).
func (s *session) logMessage(res dataResult, err error) {
	result := messageResult(err)
	s.r.opts.Metrics.Message(s.r.opts.Name, result)
	s.r.opts.Metrics.MessageSize(s.r.opts.Name, res.bytesIn)
	attrs := []any{"event", "message", "ref", s.ref(), "result", result,
		"recipients", len(s.rcpts), "bytes", res.bytesIn, "relay_ms", res.relay.Milliseconds()}
	if rep := res.report; rep != nil {
		attrs = append(attrs, "tokens", len(rep.Tokens), "tokens_created", res.created, "parts_changed", rep.Changed)
		if len(rep.Stripped) > 0 { // the references in the notices the CRM got
			attrs = append(attrs, "attachments_stripped", rep.Stripped)
		}
	}
	attrs = append(attrs, authAttrs(res)...)
	if err == nil {
		s.log.Info("message relayed", attrs...)
		return
	}
	var ut *rewrite.UnknownTokensError
	if errors.As(err, &ut) {
		s.r.opts.Metrics.UnknownTokens(s.r.opts.Name, len(ut.Tokens))
	}
	s.log.Info("message not relayed", attrs...)
}

// messageResult is the metrics label of a transaction's outcome.
func messageResult(err error) string {
	var de *downstream.Error
	switch {
	case err == nil:
		return "relayed"
	case errors.Is(err, ErrBareLineEnding):
		return "bare_line_ending"
	case errors.Is(err, ErrNULInData):
		return "nul_in_data"
	case errors.Is(err, ErrLineTooLong):
		return "line_too_long"
	case errors.Is(err, errDMARCReject):
		return "refused_dmarc"
	case errors.Is(err, rewrite.ErrLeak):
		return "refused_leak"
	case errors.Is(err, rewrite.ErrUnscannable), errors.Is(err, rewrite.ErrMalformedAddress):
		return "refused_unscannable"
	case errors.Is(err, tokenize.ErrUnknownToken):
		return "unknown_token"
	case errors.Is(err, rewrite.ErrLimit), errors.Is(err, gosmtp.ErrDataTooLarge):
		return "too_large"
	case errors.Is(err, rewrite.ErrTooManyNewTokens):
		return "refused_new_tokens"
	case errors.Is(err, rewrite.ErrBusy):
		return "busy"
	case errors.Is(err, errNewTokenRate):
		return "rate_new_tokens"
	case errors.As(err, &de) && errors.Is(de, downstream.ErrPerm):
		return "rejected"
	default:
		return "tempfail"
	}
}

// countingReader counts the client's bytes.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endMarker notes when the downstream side has read the whole rewritten
// message: the relay latency runs from there to the downstream's reply.
type endMarker struct {
	r  io.Reader
	at *time.Time
}

func (e *endMarker) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		*e.at = time.Now()
	}
	return n, err
}
