package tokenize

import (
	"context"
	"errors"
	"fmt"
)

// errNotShared refuses AppendRecord on a store whose outbox no other
// process delivers.
var errNotShared = errors.New("the store's outbox is delivered only by the process that holds its trail")

// AppendRecord commits an audit record that names no token (c.Event
// EventKeysRotated; c.Token, c.Ref unused) in the outbox of a store
// shared by several nodes, for a process that holds no trail of its own:
// `proxy keys rotate` run on a serving node's host, whose trail that
// node holds. The record is durable when AppendRecord returns, before the
// change it announces is made; when the process's store closes, a serving
// node takes its outbox over and delivers the record to its own trail
// (OutboxTakeover), as it does for a node that died.
func AppendRecord(ctx context.Context, s Store, c Change) error {
	if _, ok := s.(OutboxTakeover); !ok {
		return fmt.Errorf("%w: %w", ErrAudit, errNotShared)
	}
	if c.Event != EventKeysRotated {
		return fmt.Errorf("%w: AppendRecord takes records that name no token, not %q", ErrAudit, c.Event)
	}
	v, err := outboxEntry{Event: c.Event, Actor: c.Actor, At: c.At, Detail: c.Detail}.encode()
	if err != nil {
		return err
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.AppendOutbox(v) }); err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}
