package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/smtp/mailauth"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// errDataEnded stops the rewriting goroutine once the downstream side has
// finished (or failed): its writes into the pipe fail with it.
var errDataEnded = errors.New("smtp: downstream data ended")

// dataResult is what one DATA produced, for the log and the metrics.
type dataResult struct {
	report  *tokenize.Report
	bytesIn int64
	relay   time.Duration // end of the client's data to the downstream's reply
	// auth holds the inbound route's verdicts (nil without auth_check), and
	// authRemoved the incoming Authentication-Results fields that claimed
	// our authserv-id.
	auth        *mailauth.Verdicts
	authRemoved int
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
	s.logMessage(res, err)
	return s.reply("data", err)
}

// relay reads the client's data through the strict reader, lets the route
// prepare it (the inbound route verifies it into a spool), then rewrites
// and relays it: streamed, or spooled and sealed when the route signs.
func (s *session) relay(ctx context.Context, r io.Reader) (dataResult, error) {
	counted := &countingReader{r: NewStrictData(r)}
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
	if seal := s.cfg.policy.sealer(); seal != nil {
		return s.relaySealed(ctx, src, seal, res)
	}
	return s.relayStreamed(ctx, src, res)
}

// relayStreamed runs the rewriter and the downstream stream side by side
// over a pipe and returns the first real error.
func (s *session) relayStreamed(ctx context.Context, src io.Reader, res *dataResult) error {
	pr, pw := io.Pipe()
	var rwErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rwErr = s.rewrite(ctx, pw, src, res)
		pw.CloseWithError(rwErr) // nil: EOF, the downstream sends the dot
	}()
	err := s.send(ctx, pr, res)
	pr.CloseWithError(errDataEnded)
	<-done
	if err != nil && rwErr != nil && !errors.Is(rwErr, errDataEnded) {
		err = rwErr // the cause, rather than its echo through the pipe
	}
	return err
}

// relaySealed rewrites the whole message into a spool, computes the field
// that goes on top of it (a DKIM signature covers the whole body, RFC 6376
// §3.7, and precedes it), then relays field and message. The downstream
// DATA starts only then, so a message that cannot be sealed (Vault down)
// relays nothing.
func (s *session) relaySealed(ctx context.Context, src io.Reader, seal sealFunc, res *dataResult) error {
	sp := newSpool(s.r.opts.SpoolDir, spoolMemBytes)
	defer sp.Close()
	if err := s.rewrite(ctx, sp, src, res); err != nil {
		return err
	}
	msg, err := sp.Reader()
	if err != nil {
		return err
	}
	field, err := seal(ctx, msg)
	if err != nil {
		return err
	}
	if msg, err = sp.Reader(); err != nil {
		return err
	}
	return s.send(ctx, io.MultiReader(strings.NewReader(field), msg), res)
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

// rewrite writes the trace field, then the rewritten message, then makes
// sure the client's data was read to its end: a bare CR or LF after the
// last MIME part must be refused too (SMTP smuggling).
func (s *session) rewrite(ctx context.Context, dst io.Writer, src io.Reader, res *dataResult) (err error) {
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
	if _, err := io.Copy(io.Discard, src); err != nil {
		return err
	}
	return s.auditMessage(ctx, res)
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
		attrs = append(attrs, "tokens", len(rep.Tokens), "tokens_created", rep.Created, "parts_changed", rep.Changed)
		s.r.opts.Metrics.TokensCreated(rep.Created)
	}
	attrs = append(attrs, authAttrs(res)...)
	if err == nil {
		s.log.Info("message relayed", attrs...)
		return
	}
	var ut *tokenize.UnknownTokensError
	if errors.As(err, &ut) {
		s.r.opts.Metrics.UnknownTokens(s.r.opts.Name, len(ut.Tokens))
	}
	s.log.Info("message not relayed", attrs...)
}

// messageResult is the metrics label of a transaction's outcome.
func messageResult(err error) string {
	var de *DownstreamError
	switch {
	case err == nil:
		return "relayed"
	case errors.Is(err, ErrBareLineEnding):
		return "bare_line_ending"
	case errors.Is(err, errDMARCReject):
		return "refused_dmarc"
	case errors.Is(err, tokenize.ErrLeak):
		return "refused_leak"
	case errors.Is(err, tokenize.ErrUnscannable), errors.Is(err, tokenize.ErrMalformedAddress):
		return "refused_unscannable"
	case errors.Is(err, tokenize.ErrUnknownToken):
		return "unknown_token"
	case errors.Is(err, tokenize.ErrLimit), errors.Is(err, gosmtp.ErrDataTooLarge):
		return "too_large"
	case errors.As(err, &de) && errors.Is(de, ErrDownstreamPerm):
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
