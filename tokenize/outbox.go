package tokenize

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrAudit reports a token that was not created because its creation
// could not be audited: the audit trail is failing or too far behind.
var ErrAudit = errors.New("audit record not written")

// CreateAuditor receives the creation record of every new token.
//
// The record is not written to the trail before the token is stored, as a
// separate write would cost a second fsync per new address (measured:
// ~30 % of the inbound route with a new sender per message). It is stored
// in the same bbolt transaction as the token, in the outbox bucket, so
// token and record become durable together or not at all, and a
// background goroutine moves it from there into the trail within
// deliveryLinger, or at once on SyncAudit (a transactional outbox). A
// token without a creation record therefore cannot exist, not even after
// a crash; a crash between delivering a batch and deleting it from the
// outbox is resolved at the next start with Delivered, so the trail gets
// each record once.
type CreateAuditor interface {
	// Actor names who caused the creation, from the Tokenize caller's
	// context ("route:inbound", "cli:root").
	Actor(ctx context.Context) string
	// Ready reports whether records can be delivered now. While it
	// returns an error no token is created (ErrAudit): a route answers
	// 451 instead of creating tokens the trail would not show.
	Ready() error
	// Deliver appends the records to the trail, in order, and returns
	// once they are durable.
	Deliver(ctx context.Context, recs []Created) error
	// Delivered reports which of refs the trail already holds, looking
	// at records written at or after since. It is asked once at start,
	// for records an unclean stop left in the outbox.
	Delivered(ctx context.Context, since time.Time, refs []string) (map[string]bool, error)
}

// Created is one token-creation record.
type Created struct {
	Ref   string    // unique name of the outbox entry, kept in the trail record
	Token string    // the token, at the relay domain
	Actor string    // who caused it
	At    time.Time // when the token was committed
}

const (
	// outboxBatch bounds one delivery and one delete transaction.
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

// outbox moves creation records from the bucket to the CreateAuditor.
type outbox struct {
	m       *Map
	audit   CreateAuditor
	wake    chan struct{}
	syncs   chan chan error // Map.SyncAudit callers
	stopped chan struct{}   // closed when the drain loop has ended
	pending atomic.Int64
	failing atomic.Pointer[error] // the last delivery's error; nil after a success

	// Owned by the drain loop (and by flush once the loop has stopped).
	delivered map[string]bool // delivered, not yet deleted from the bucket
	leftover  []byte          // last key found at start; nil once checked
}

func newOutbox(m *Map, a CreateAuditor) (*outbox, error) {
	o := &outbox{m: m, audit: a, wake: make(chan struct{}, 1), syncs: make(chan chan error),
		stopped: make(chan struct{}), delivered: map[string]bool{}}
	if a == nil {
		return o, nil
	}
	err := m.db.safeView(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		o.pending.Store(int64(b.Stats().KeyN))
		if k, _ := b.Cursor().Last(); k != nil {
			o.leftover = bytes.Clone(k)
		}
		return nil
	})
	if errors.Is(err, ErrStore) {
		return nil, err // a damaged page, said by safeView
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

// put stores the creation record of token local in tx, the transaction
// that stores the token.
func (o *outbox) put(tx *bolt.Tx, local, actor string, at time.Time) error {
	if o.audit == nil {
		return nil
	}
	b := tx.Bucket(bucketAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	// The random half keeps refs unique when a restored backup starts
	// the sequence again below refs the trail already holds.
	key := make([]byte, 16)
	binary.BigEndian.PutUint64(key, seq)
	if _, err := rand.Read(key[8:]); err != nil {
		return err
	}
	return b.Put(key, encodeCreated(local, actor, at))
}

// added wakes the drain loop after a commit that stored a record.
func (o *outbox) added() {
	if o.audit == nil {
		return
	}
	o.pending.Add(1)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// encodeCreated lays out an entry: commit time (Unix nanoseconds), actor
// length, actor, token local part.
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

func (o *outbox) decode(k, v []byte) (Created, error) {
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return Created{}, fmt.Errorf("outbox entry %x: %d bytes, too short", k, len(v))
	}
	n := 9 + int(v[8])
	return Created{
		Ref:   hex.EncodeToString(k),
		Token: o.m.opts.Format.Address(string(v[n:])),
		Actor: string(v[9:n]),
		At:    time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(),
	}, nil
}
