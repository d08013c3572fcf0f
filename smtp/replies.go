package smtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/tokenproxy/tokenproxy/rewrite"
	"github.com/tokenproxy/tokenproxy/smtp/downstream"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// This file is the routes' one error boundary (DESIGN.md invariant 5): every
// error a session returns to go-smtp passes through reply, which turns it
// into a *gosmtp.SMTPError with our own generic text and the session
// reference, and logs the details (never an address). go-smtp sends the
// text of any other error to the client, so nothing else may be returned.

// refusal is a reply decided by policy. It carries the text sent to the
// client; the session reference is appended by reply.
type refusal struct {
	code int
	enh  gosmtp.EnhancedCode
	text string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.code, r.enh[0], r.enh[1], r.enh[2], r.text)
}

// Refusals of policy. Their texts are the whole story a client gets.
var (
	errRelayDenied   = &refusal{550, gosmtp.EnhancedCode{5, 7, 1}, "Relaying denied"}
	errNoSuchUser    = &refusal{550, gosmtp.EnhancedCode{5, 1, 1}, "No such recipient"}
	errBadRecipient  = &refusal{501, gosmtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax"}
	errBadSender     = &refusal{501, gosmtp.EnhancedCode{5, 1, 7}, "Bad sender address syntax"}
	errNeedTLS       = &refusal{530, gosmtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first"}
	errNeedAuth      = &refusal{530, gosmtp.EnhancedCode{5, 7, 0}, "Authentication required"}
	errAuthFailed    = &refusal{535, gosmtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid"}
	errAuthNotHere   = &refusal{502, gosmtp.EnhancedCode{5, 5, 1}, "AUTH not available on this route"}
	errAuthMechanism = &refusal{504, gosmtp.EnhancedCode{5, 5, 4}, "Unrecognized authentication mechanism"}
	errShuttingDown  = &refusal{421, gosmtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later"}
	errTxnBroken     = &refusal{451, gosmtp.EnhancedCode{4, 4, 2}, "Connection to the next hop lost, start over"}
	errUnknownTokens = &refusal{550, gosmtp.EnhancedCode{5, 1, 1}, "Message names an unknown or erased recipient token"}
	errTooLarge      = &refusal{552, gosmtp.EnhancedCode{5, 3, 4}, "Message exceeds a size or structure limit"}
	// errErasedAddress: an address erased under compliance.after_erasure
	// refuse (a suppression entry); 5.7.1, delivery not authorized.
	errErasedAddress = &refusal{550, gosmtp.EnhancedCode{5, 7, 1}, "Message names an address that was erased at its owner's request"}
	// errDMARCReject: the From domain asks receivers to reject mail that
	// fails DMARC (RFC 7489 §6.6.2 step 6, §6.7); 5.7.1 is "delivery not
	// authorized" (RFC 3463 §3.8). The text names no domain.
	errDMARCReject = &refusal{550, gosmtp.EnhancedCode{5, 7, 1}, "Message refused by the sender domain's DMARC policy"}
	// errTooManyNewTokens: a message naming more new correspondents than
	// rewrite.limits.max_new_tokens. Permanent, since the same message
	// always exceeds it. 552, as for a message over a size limit (RFC
	// 5321 §4.2.2: "exceeded storage allocation", and the reply RFC 5321
	// §4.5.3.1.10 allowed for too many recipients); 5.7.0, other security
	// or policy status (RFC 3463 §3.8), rather than 5.3.4: the sender's
	// bounce must not suggest that a smaller message would pass.
	errTooManyNewTokens = &refusal{552, gosmtp.EnhancedCode{5, 7, 0}, "Message names too many new correspondents"}
	// errNewTokenRate: the client, or all clients, created more new
	// tokens this minute than inbound.new_token_rate allows. 451 4.7.0
	// (RFC 3463 §3.8, a temporary policy refusal): the sender retries
	// later and nothing is lost.
	errNewTokenRate = &refusal{451, gosmtp.EnhancedCode{4, 7, 0}, "Too many new correspondents for now, try again later"}
	// errStagedTokenTaken: another message committed the token of an
	// address this one staged first (tokenize.ErrStagedTokenTaken); the
	// retry finds it committed.
	errStagedTokenTaken = &refusal{451, gosmtp.EnhancedCode{4, 3, 0}, "Temporary local problem, try again later"}
	// errBusy: the route's messages already hold as much content whole
	// as rewrite.limits.max_held_bytes allows (rewrite.ErrBusy). RFC 5321
	// §4.2.2 452, insufficient system storage, is a reply to DATA
	// (§4.3.2); 4.3.1, mail system full (RFC 3463 §3.4): the sender
	// retries later and nothing is lost.
	errBusy = &refusal{452, gosmtp.EnhancedCode{4, 3, 1}, "Insufficient system resources, try again later"}
)

// reply is the error boundary. stage names the command for the log
// ("mail", "rcpt", "data", "auth"). It returns nil for nil.
func (s *session) reply(stage string, err error) error {
	if err == nil {
		return nil
	}
	code, enh, text, level := s.classify(err)
	s.log.Log(context.Background(), level, "command refused", "stage", stage, "code", code,
		"enhanced", fmt.Sprintf("%d.%d.%d", enh[0], enh[1], enh[2]), "err", errText(err))
	s.r.opts.Metrics.Reply(s.r.opts.Name, code)
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf("%s (session %s)", text, s.ref())}
}

// classify maps an error to a reply and the log level of its line.
func (s *session) classify(err error) (int, gosmtp.EnhancedCode, string, slog.Level) {
	var rf *refusal
	var de *downstream.Error
	var se *gosmtp.SMTPError
	switch {
	case errors.As(err, &rf):
		return rf.code, rf.enh, rf.text, slog.LevelInfo
	case errors.Is(err, ErrBareLineEnding):
		return ErrBareLineEnding.Code, ErrBareLineEnding.EnhancedCode, ErrBareLineEnding.Message, slog.LevelWarn
	case errors.Is(err, ErrNULInData):
		return ErrNULInData.Code, ErrNULInData.EnhancedCode, ErrNULInData.Message, slog.LevelWarn
	case errors.Is(err, ErrLineTooLong):
		return ErrLineTooLong.Code, ErrLineTooLong.EnhancedCode, ErrLineTooLong.Message, slog.LevelInfo
	case errors.Is(err, gosmtp.ErrDataTooLarge), errors.Is(err, rewrite.ErrLimit):
		return errTooLarge.code, errTooLarge.enh, errTooLarge.text, slog.LevelInfo
	case errors.Is(err, rewrite.ErrTooManyNewTokens):
		return errTooManyNewTokens.code, errTooManyNewTokens.enh, errTooManyNewTokens.text, slog.LevelWarn
	case errors.Is(err, rewrite.ErrBusy):
		return errBusy.code, errBusy.enh, errBusy.text, slog.LevelWarn
	case errors.Is(err, tokenize.ErrStagedTokenTaken):
		return errStagedTokenTaken.code, errStagedTokenTaken.enh, errStagedTokenTaken.text, slog.LevelWarn
	case errors.Is(err, rewrite.ErrLeak):
		code, enh := s.refusalCode()
		return code, enh, "Message refused: it would disclose an address", slog.LevelError
	case errors.Is(err, rewrite.ErrUnscannable), errors.Is(err, rewrite.ErrMalformedAddress):
		code, enh := s.refusalCode()
		return code, enh, "Message refused: content cannot be checked for addresses", slog.LevelWarn
	case errors.Is(err, tokenize.ErrErasedSubject):
		return errErasedAddress.code, errErasedAddress.enh, errErasedAddress.text, slog.LevelInfo
	case errors.Is(err, tokenize.ErrUnknownToken):
		return errUnknownTokens.code, errUnknownTokens.enh, errUnknownTokens.text, slog.LevelInfo
	case errors.As(err, &de):
		return downstreamReply(de)
	case errors.As(err, &se) && se.Code >= 400:
		// A go-smtp sentinel (ErrDataReset, ErrDataTooLarge variants):
		// its text is the library's own, with no data of ours.
		return se.Code, se.EnhancedCode, se.Message, slog.LevelInfo
	case errors.Is(err, context.Canceled):
		return 421, gosmtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later", slog.LevelInfo
	default:
		// Unknown failure is temporary (Vault, bbolt, timeouts): the
		// sender retries, nothing is lost (DESIGN.md invariant 3).
		return 451, gosmtp.EnhancedCode{4, 3, 0}, "Temporary local problem, try again later", slog.LevelError
	}
}

// refusalCode is the configured reply to leak-guard and unscannable
// refusals: 554 5.6.0 by default, 451 4.6.0 when the sender should retry.
func (s *session) refusalCode() (int, gosmtp.EnhancedCode) {
	if s.cfg.limits.RefusalCode == 451 {
		return 451, gosmtp.EnhancedCode{4, 6, 0}
	}
	return 554, gosmtp.EnhancedCode{5, 6, 0}
}

// downstreamReply maps a downstream failure (DESIGN.md invariant 2): 4xx,
// timeout or a lost connection → 451 4.4.x; 5xx → the same code with our
// own text, so the sender's bounce is right without echoing the next hop.
func downstreamReply(de *downstream.Error) (int, gosmtp.EnhancedCode, string, slog.Level) {
	switch {
	case errors.Is(de, downstream.ErrNoSMTPUTF8):
		// RFC 6531 §3.6.2: permanent, so the sender bounces at once.
		return 553, gosmtp.EnhancedCode{5, 6, 7}, "Internationalized address or header: the next hop does not support SMTPUTF8", slog.LevelInfo
	case errors.Is(de, downstream.ErrNo8BitMIME):
		return 554, gosmtp.EnhancedCode{5, 6, 3}, "8-bit message: the next hop does not accept it unconverted", slog.LevelInfo
	}
	if errors.Is(de, downstream.ErrPerm) && de.Code >= 500 && de.Code <= 599 {
		enh := de.Enhanced
		if enh[0] != 5 {
			enh = gosmtp.EnhancedCode{5, 0, 0}
		}
		return de.Code, enh, "Refused by the next hop", slog.LevelInfo
	}
	switch {
	case de.Code != 0:
		return 451, gosmtp.EnhancedCode{4, 4, 0}, "Next hop temporarily refused, try again later", slog.LevelInfo
	case de.Timeout():
		return 451, gosmtp.EnhancedCode{4, 4, 1}, "Next hop did not answer in time, try again later", slog.LevelWarn
	default:
		return 451, gosmtp.EnhancedCode{4, 4, 2}, "Connection to the next hop failed, try again later", slog.LevelWarn
	}
}

// errText is an error's text for the log. Errors of this project never
// carry addresses (address.AddressError, downstream.Error keep them out),
// so the text is logged as is.
func errText(err error) string { return err.Error() }
