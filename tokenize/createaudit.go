package tokenize

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrAudit wraps an OnCreate failure: the token was not created because its
// creation could not be audited.
var ErrAudit = errors.New("audit record not written")

// errAuditedOtherSlot ends a creation whose audited token was taken by a
// colliding address between the audit and the commit; create starts over.
var errAuditedOtherSlot = errors.New("audited token slot taken")

// auditCreate finds the slot a new token will take and has OnCreate record
// it before anything is stored. Auditing first means a failed commit can
// leave a creation record without a token (a retry records it again), but
// never a token without its record, which is the direction an auditor
// cannot accept.
func (m *Map) auditCreate(ctx context.Context, view func(func(*bolt.Tx) error) error, cur versionedMAC) (string, error) {
	var local string
	var rec *record
	err := view(func(tx *bolt.Tx) error {
		var err error
		local, rec, err = m.probe(tx.Bucket(bucketTokens), cur)
		return err
	})
	if errors.Is(err, ErrErasedSubject) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("%w: create token: %w", ErrStore, err)
	}
	if rec != nil || m.opts.OnCreate == nil {
		// rec: a concurrent session created it (and audited it) first.
		return local, nil
	}
	if err := m.opts.OnCreate(ctx, m.opts.Format.Address(local)); err != nil {
		return "", fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return local, nil
}
