package tokenize

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrAudit reports a token that was not created because its creation
// could not be audited: the audit trail is failing or too far behind.
var ErrAudit = errors.New("audit record not written")

// Auditor receives the audit record of every change the map makes on its
// own: each new token's creation, each expiry.
//
// The record is not written to the trail before the change is stored, as
// a separate write would cost a second fsync per new address (measured:
// ~30 % of the inbound route with a new sender per message), and a write
// inside a transaction that may run twice (Store.Update) could record a
// change that never happened. It is stored in the same transaction as the
// change, in the store's outbox, so change and record become durable
// together or not at all, and a background goroutine moves it from there
// into the trail within deliveryLinger, or at once on SyncAudit (a
// transactional outbox). A token without a creation record therefore
// cannot exist, not even after a crash; a crash between delivering a batch
// and deleting it from the outbox is resolved at the next start with
// Delivered, so the trail gets each record once.
type Auditor interface {
	// Actor names who caused the creation, from the Tokenize caller's
	// context ("route:inbound", "cli:root").
	Actor(ctx context.Context) string
	// Ready reports whether records can be delivered now. While it
	// returns an error no token is created (ErrAudit): a route answers
	// 451 instead of creating tokens the trail would not show.
	Ready() error
	// Deliver appends the records to the trail, in order, and returns
	// once they are durable.
	Deliver(ctx context.Context, recs []Change) error
	// Delivered reports which of refs the trail already holds, looking
	// at records written at or after since. It is asked once at start,
	// for records an unclean stop left in the outbox.
	Delivered(ctx context.Context, since time.Time, refs []string) (map[string]bool, error)
}

// Event names the kind of a Change.
type Event string

// The changes the map audits through its outbox.
const (
	EventCreated Event = "created" // a new token
	EventExpired Event = "expired" // a token erased by retention (Expire)
	// EventKeysRotated is a key rotation made by a process that holds no
	// trail of its own (AppendRecord); it names no token.
	EventKeysRotated Event = "keys_rotated"
)

// Change is one audit record committed with a change of the map.
type Change struct {
	Ref    string    // unique name of the outbox entry, kept in the trail record
	Event  Event     // what happened
	Token  string    // the token, at the relay domain
	Actor  string    // who caused it
	At     time.Time // when the change was committed
	Detail map[string]string
}

const (
	// outboxBatch bounds one read of the outbox and one delivery.
	outboxBatch = 1000
	// outboxLimit is the backlog at which creation is refused: far more
	// than a healthy trail ever holds back (a batch per fsync), and few
	// enough that a stuck trail stops token creation within seconds.
	outboxLimit = 20000
	// recoveryMargin widens the look-back of Delivered against a clock
	// that was stepped back between commit and delivery.
	recoveryMargin = time.Minute
)

// errOutboxStopped answers SyncAudit after Close.
var errOutboxStopped = errors.New("token map closed: audit outbox stopped")

// errOutboxFull refuses creation while the trail is far behind.
var errOutboxFull = fmt.Errorf("audit trail is %d creation records behind", outboxLimit)

// outbox moves records from the store's outbox to the Auditor.
type outbox struct {
	m       *Map
	audit   Auditor
	wake    chan struct{}
	syncs   chan chan error // Map.SyncAudit callers
	stopped chan struct{}   // closed when the drain loop has ended
	pending atomic.Int64
	failing atomic.Pointer[error] // the last delivery's error; nil after a success

	// Owned by the drain loop (and by flush once the loop has stopped).
	delivered map[string]bool // delivered, not yet deleted from the store
	leftover  string          // last ref found at start; "" once checked
}

func newOutbox(m *Map, a Auditor) (*outbox, error) {
	o := &outbox{m: m, audit: a, wake: make(chan struct{}, 1), syncs: make(chan chan error),
		stopped: make(chan struct{}), delivered: map[string]bool{}}
	if a == nil {
		return o, nil
	}
	err := m.store.View(context.Background(), func(tx ReadTx) error {
		n, err := tx.OutboxLen()
		if err != nil || n == 0 {
			return err
		}
		o.pending.Store(int64(n))
		return tx.Outbox(n, func(ref string, _ []byte) error {
			o.leftover = ref
			return nil
		})
	})
	if errors.Is(err, ErrStore) {
		return nil, err // a damaged store, said by View
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read the audit outbox: %w", ErrStore, err)
	}
	return o, nil
}

// ready is checked before a token is created. While deliveries fail, it
// asks the drain loop to try again at once rather than at its next retry
// (up to retryMax later): the first new sender after an operator frees
// the disk gets its token, not a 451. During an outage each refused
// creation costs one failed delivery attempt: proportional to the
// traffic, never a spin.
func (o *outbox) ready(ctx context.Context) error {
	if o.audit == nil {
		return nil
	}
	if p := o.failing.Load(); p != nil {
		if err := o.sync(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrAudit, err)
		}
	}
	if o.pending.Load() >= outboxLimit {
		return fmt.Errorf("%w: %w", ErrAudit, errOutboxFull)
	}
	if err := o.audit.Ready(); err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}

func (o *outbox) actor(ctx context.Context) string {
	if o.audit == nil {
		return ""
	}
	return o.audit.Actor(ctx)
}

// outboxEntry is a Change before it has a ref; Token is the local part.
type outboxEntry struct {
	Event  Event             `json:"e"`
	Token  string            `json:"t"`
	Actor  string            `json:"a,omitempty"`
	At     time.Time         `json:"at"`
	Detail map[string]string `json:"d,omitempty"`
}

// put stores a record in tx, the transaction that makes the change.
func (o *outbox) put(tx Tx, e outboxEntry) error {
	if o.audit == nil {
		return nil
	}
	v, err := e.encode()
	if err != nil {
		return err
	}
	return tx.AppendOutbox(v)
}

// added wakes the drain loop after a commit that stored n records.
func (o *outbox) added(n int) {
	if o.audit == nil || n == 0 {
		return
	}
	o.pending.Add(int64(n))
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// entryJSON marks an entry encoded as JSON. Creation entries keep the
// compact layout of the first release (encodeCreated), whose first byte
// is the top byte of a positive Unix-nanosecond time, always below 0x80:
// entries an older binary left in the outbox still read.
const entryJSON = 0xE1

func (e outboxEntry) encode() ([]byte, error) {
	if e.Event == EventCreated && e.Detail == nil {
		return encodeCreated(e.Token, e.Actor, e.At), nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append([]byte{entryJSON}, b...), nil
}

// encodeCreated lays out a creation entry: commit time (Unix
// nanoseconds), actor length, actor, token local part.
func encodeCreated(local, actor string, at time.Time) []byte {
	if len(actor) > 255 {
		actor = actor[:255]
	}
	v := make([]byte, 0, 9+len(actor)+len(local))
	v = binary.BigEndian.AppendUint64(v, uint64(at.UnixNano()))
	v = append(v, byte(len(actor)))
	v = append(v, actor...)
	return append(v, local...)
}

func (o *outbox) decode(ref string, v []byte) (Change, error) {
	var e outboxEntry
	switch {
	case len(v) > 0 && v[0] == entryJSON:
		if err := json.Unmarshal(v[1:], &e); err != nil {
			return Change{}, fmt.Errorf("outbox entry %s: %w", ref, err)
		}
	case len(v) < 9 || len(v) < 9+int(v[8]):
		return Change{}, fmt.Errorf("outbox entry %s: %d bytes, too short", ref, len(v))
	default:
		n := 9 + int(v[8])
		e = outboxEntry{Event: EventCreated, Token: string(v[n:]), Actor: string(v[9:n]),
			At: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
	}
	c := Change{Ref: ref, Event: e.Event, Actor: e.Actor, At: e.At.UTC(), Detail: e.Detail}
	if e.Token != "" {
		c.Token = o.m.opts.Format.Address(e.Token)
	}
	return c, nil
}
