package audit

import "errors"

// Sentinel errors. Callers test them with errors.Is; the wrapping error
// adds the path or the field, never a record's content.
var (
	// ErrAddressInRecord refuses a record with '@' outside Tokens: the
	// trail must never hold a customer e-mail address.
	ErrAddressInRecord = errors.New("audit: '@' in a record field (an address?)")
	// ErrInvalidRecord refuses a record the log cannot write (no event, a
	// checkpoint written by a caller, a line over MaxLineSize).
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrLocked: another process (or another Log in this one) has the file open.
	ErrLocked = errors.New("audit: log file is locked by another writer")
	// ErrTampered: Open found a last record or head file that does not
	// match; the operator must run verify before the log is used again.
	ErrTampered = errors.New("audit: log file fails its integrity check")
	// ErrWrite: the records were not written. A mail proxy answers 451.
	ErrWrite = errors.New("audit: write failed")
	// ErrClosed: Append or Checkpoint after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrNoSigner: Checkpoint on a log opened without a Signer.
	ErrNoSigner = errors.New("audit: no checkpoint signer configured")
)
