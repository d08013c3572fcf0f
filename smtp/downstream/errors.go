package downstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	gosmtp "github.com/emersion/go-smtp"
)

// ErrTemp and ErrPerm classify every error of the
// downstream client, so the route can pick its reply with errors.Is:
// Temp → 451 4.4.x, Perm → a 5xx with our own generic text. Anything that is
// not a 5xx reply is temporary (STYLE.md: unknown failure is temporary).
var (
	ErrTemp = errors.New("temporary downstream failure")
	ErrPerm = errors.New("permanent downstream failure")
)

// errDownstreamClosed and errTxnDone are the causes for calls after the end.
var (
	errDownstreamClosed = errors.New("downstream client closed")
	errTxnDone          = errors.New("downstream transaction already ended")
	errNoStartTLS       = errors.New("downstream does not offer STARTTLS")
	errNoRcpt           = errors.New("DATA before any accepted recipient")
)

// Error is a failure of one downstream stage. It wraps Kind
// (ErrTemp or ErrPerm) and, for failures without a reply,
// the cause. Error() keeps the downstream's code but never its text: the text
// is in Reply, for logs only (it may hold addresses; see DESIGN.md invariants 1
// and 5). The *gosmtp.SMTPError is deliberately not unwrappable, so the text
// cannot reach a client through errors.As.
type Error struct {
	Code     int                 // downstream reply code, 0 when there was no reply
	Enhanced gosmtp.EnhancedCode // downstream enhanced code, zero when absent
	Stage    string              // "connect", "mail", "rcpt" or "data"
	Reply    string              // downstream reply text: logs only, never to a client
	Kind     error               // ErrTemp or ErrPerm
	Err      error               // cause when there was no reply (network, TLS, timeout)
}

func (e *Error) Error() string {
	if e.Code != 0 {
		enh := ""
		if e.Enhanced != (gosmtp.EnhancedCode{}) && e.Enhanced != gosmtp.NoEnhancedCode {
			enh = fmt.Sprintf(" %d.%d.%d", e.Enhanced[0], e.Enhanced[1], e.Enhanced[2])
		}
		return fmt.Sprintf("smtp: downstream %s: reply %d%s: %v", e.Stage, e.Code, enh, e.Kind)
	}
	return fmt.Sprintf("smtp: downstream %s: %v: %v", e.Stage, e.Kind, e.Err)
}

// Unwrap exposes Kind and the cause (never the reply).
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Timeout reports whether the failure was a deadline: our guard's, the
// socket's or the client's.
func (e *Error) Timeout() bool { return isTimeout(e) }

// isTimeout: our guard's deadline, or a socket or client deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// downstreamErr turns an error of the go-smtp client into a *Error.
func downstreamErr(stage string, err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		kind := ErrTemp
		if se.Code >= 500 && se.Code <= 599 {
			kind = ErrPerm
		}
		return &Error{Code: se.Code, Enhanced: se.EnhancedCode, Stage: stage, Reply: se.Message, Kind: kind}
	}
	return &Error{Stage: stage, Kind: ErrTemp, Err: err}
}
