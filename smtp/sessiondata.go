package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gosmtp "github.com/emersion/go-smtp"

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
}

// Data reads the message through the strict reader, rewrites it and
// streams it to the downstream transaction, all at once: the client gets
// 250 only after the downstream's 250 for the rewritten message, and any
// failure before the end aborts the downstream without the final dot
// (DESIGN.md invariant 2). It is called for DATA and for BDAT.
func (s *session) Data(r io.Reader) error {
	if s.txn == nil || s.broken {
		return s.reply("data", errTxnBroken)
	}
	limits := s.r.opts.Limits
	// go-smtp's read deadline was set for the DATA command line; the
	// whole transfer gets data_timeout instead (slow senders are bounded,
	// large messages are not cut off by the per-command timeout).
	_ = s.c.Conn().SetReadDeadline(time.Now().Add(limits.DataTimeout))
	ctx, cancel := context.WithTimeout(s.r.ctx, limits.DataTimeout)
	defer cancel()

	res, err := s.relay(ctx, r)
	s.txn = nil // Data ended the downstream transaction either way
	s.logMessage(res, err)
	return s.reply("data", err)
}

// relay runs the rewriter and the downstream stream side by side over a
// pipe and returns the first real error.
func (s *session) relay(ctx context.Context, r io.Reader) (dataResult, error) {
	counted := &countingReader{r: NewStrictData(r)}
	pr, pw := io.Pipe()
	var res dataResult
	var rwErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rwErr = s.rewrite(ctx, pw, counted, &res)
		pw.CloseWithError(rwErr) // nil: EOF, the downstream sends the dot
	}()
	var inputEnd time.Time
	err := s.txn.Data(ctx, &endMarker{r: pr, at: &inputEnd})
	pr.CloseWithError(errDataEnded)
	<-done
	res.bytesIn = counted.n
	if !inputEnd.IsZero() {
		res.relay = time.Since(inputEnd)
		s.r.opts.Metrics.RelayLatency(s.r.opts.Name, res.relay)
	}
	if err != nil && rwErr != nil && !errors.Is(rwErr, errDataEnded) {
		err = rwErr // the cause, rather than its echo through the pipe
	}
	return res, err
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
	rep, err := s.r.policy.rewrite(ctx, s, dst, src)
	res.report = rep
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return err
	}
	return nil
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
