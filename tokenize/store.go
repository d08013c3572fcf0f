package tokenize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tokenproxy/tokenproxy/vault"
)

// This file is the storage contract: what the token map needs of a
// backend. The map logic (derivation, sealing, collisions, tombstones,
// caches, outbox, re-encryption, expiry) lives once, in this package, on
// top of it. Backends: boltstore (one node, the embedded default) and the
// in-memory store of storetest (unit tests); storetest.Run is the
// conformance suite every backend passes.
//
// A backend stores opaque bytes under three names: tokens (token local
// part → sealed record or tombstone), the audit outbox (records on their
// way to the trail, in commit order), and meta (small values of the map:
// wrapped data keys through vault.Store, re-encryption progress). It never
// sees an address: records are sealed before they reach it.

// ErrStore reports a store that cannot be opened or used; the routes map it
// to 451 4.3.0. Backends wrap it.
var ErrStore = errors.New("token store")

// ErrSchemaTooNew reports a store written by a newer tokenproxy.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Store is a transactional key-value store for the token map.
type Store interface {
	// View runs fn on a consistent snapshot. A damaged backend is ErrStore,
	// never a panic.
	View(ctx context.Context, fn func(ReadTx) error) error
	// Update runs fn in a read-write transaction and returns once the
	// transaction is durable. fn may run more than once (a shared commit
	// that failed is retried alone; an optimistic transaction whose reads
	// changed runs again), so it must have no effect outside tx: audit
	// records go through the outbox, in the same transaction.
	Update(ctx context.Context, fn func(Tx) error) error
	// MaxBatch is the most writes one Update may carry (etcd allows 128
	// operations per transaction); batch work stays under it.
	MaxBatch() int
	// Watch reports tokens that another node changed (erased, renamed) so
	// that caches drop them. A store only this process writes returns nil.
	Watch(ctx context.Context) <-chan string
	// Wipe makes what committed updates replaced or deleted unreadable in
	// the backend's files (GDPR Art. 17: an erased record's ciphertext
	// must not survive in free pages). It returns once that is durable.
	Wipe(ctx context.Context) error
	// Close releases the store. The map does not close its store.
	Close() error

	vault.Store // the wrapped data keys
}

// ReadTx reads inside a transaction. Returned byte slices are valid only
// until the transaction ends: keep a copy.
type ReadTx interface {
	// Token returns a token's stored value, nil if there is none.
	Token(local string) ([]byte, error)
	// Tokens calls fn for each token after the given local part ("" for
	// the first), in local-part order, until fn returns false or an error.
	Tokens(after string, fn func(local string, value []byte) (bool, error)) error
	// Outbox calls fn for up to limit outbox entries in commit order.
	Outbox(limit int, fn func(ref string, value []byte) error) error
	// OutboxLen counts the outbox entries.
	OutboxLen() (int, error)
	// Meta returns a value of the map's own, nil if unset.
	Meta(name string) ([]byte, error)
}

// Tx writes inside a transaction; its writes become visible and durable
// together when Update returns nil.
type Tx interface {
	ReadTx
	PutToken(local string, value []byte) error
	// AppendOutbox adds an entry after every committed one. Its ref,
	// chosen by the store, is unique for the life of the store, also
	// across a restored backup, and refs sort (as strings) in commit
	// order.
	AppendOutbox(value []byte) error
	DeleteOutbox(refs []string) error
	PutMeta(name string, value []byte) error
}

// Backuper is what a backend offers for online backups (the compliance
// API's, and proxy backup): a consistent copy while the map serves.
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// The interfaces below are optional: a store that several nodes share
// implements them (etcdstore); a store of one node (boltstore, storetest)
// does not, and the map then behaves as the only node.

// Elector runs work that must happen on one node of a cluster at a time:
// retention sweeps and record re-encryption (DESIGN.md, Store). Two
// nodes sweeping at once would each expire the same idle tokens in
// racing batches (conflicts and retries for nothing); two re-encrypting
// would rewrite every record twice.
type Elector interface {
	// Lead blocks until this node leads task (a name such as
	// "retention") or ctx ends, then returns ctx's error. The returned
	// context ends when leadership is lost (the node's lease ended:
	// another node may lead already) or when ctx ends; ending ctx gives
	// leadership up, so that another node takes over at once.
	Lead(ctx context.Context, task string) (context.Context, error)
}

// OutboxTakeover is implemented by a store whose outbox is per node: when
// a node dies with records in its outbox, one surviving node takes that
// outbox over, so that the records reach a trail without waiting for the
// dead node to come back. From then on the survivor's Outbox lists those
// entries too (with the refs their node gave them, in commit order among
// its own), OutboxLen counts them, and DeleteOutbox deletes them; the
// store hands the outbox back once it is empty. Entries present when the
// store opened are listed at once, so the map's start-up check against
// the trail (Auditor.Delivered) covers them.
type OutboxTakeover interface {
	// TakenOver reports each later takeover with the number of entries
	// it added, so that the map delivers them at once rather than at its
	// next commit. The channel closes when ctx ends or the store closes.
	TakenOver(ctx context.Context) <-chan int
}

// Freshness is what a backend shared with other nodes offers so that the
// map's caches stay coherent with their writes (DESIGN.md, Store): the
// store is fresh while it has recently confirmed, against the cluster,
// that every change committed elsewhere has reached the map's Watch. A
// store only this process writes is always fresh and need not implement
// it.
//
// While the store is not fresh, the map serves nothing from its caches
// that an erasure on another node could have invalidated: Tokenize of a
// known address continues only for Options.StaleGrace, Resolve fails
// (ErrStore, which the routes answer with 451 4.3.0), and the node is not
// ready.
type Freshness interface {
	// Fresh returns nil while the store is fresh. Otherwise it returns a
	// *StaleError (wrapping ErrStore) saying since when and why. It is
	// called on every cached answer, so it must be quick and must not
	// wait on the network.
	Fresh() error
}

// StaleError is the error of Freshness.Fresh: the store has not been
// fresh since Since, because of Cause. It matches ErrStore.
type StaleError struct {
	Since time.Time
	Cause error
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%v: not fresh since %s: %v", ErrStore, e.Since.UTC().Format(time.RFC3339Nano), e.Cause)
}

// Unwrap makes errors.Is find ErrStore and the cause.
func (e *StaleError) Unwrap() []error { return []error{ErrStore, e.Cause} }

// KeysWatcher is implemented by a store whose wrapped data keys other
// nodes may change (etcdstore): a key version added on one node reaches
// the others' maps through it (Options.ReloadKeys).
type KeysWatcher interface {
	// WatchKeys sends a value when the watch opens and after the
	// wrapped keys changed (a version added, or all rewrapped); values
	// coalesce, so a receiver re-reads the keys rather than counting.
	// The channel closes when ctx ends or the store closes.
	WatchKeys(ctx context.Context) <-chan struct{}
}

// SeenTx is implemented by the transactions of a store that keeps
// last-seen times apart from the records (etcdstore; DESIGN.md, Tokens):
// a use then never rewrites a record, whose ciphertext is written once
// (on etcd every rewrite is a new revision of it, kept until compaction,
// and a cache drop on every other node through the watch). Each node
// writes its own time of a token, so the nodes' flushes never conflict;
// a token's last-seen time is the latest of its record's and every
// node's. A store without it (boltstore, storetest's in-memory store:
// one node) has the map write last-seen times into the records.
type SeenTx interface {
	// Seen returns the latest last-seen time any node wrote for a token
	// (unix seconds), 0 if none. It is not compared at commit: a use
	// noted meanwhile is as late as one noted just after.
	Seen(local string) (int64, error)
	// PutSeen writes this node's last-seen time of a token. One write.
	PutSeen(local string, at int64) error
	// DeleteSeen removes every node's last-seen time of a token (its
	// erasure). One write.
	DeleteSeen(local string) error
}
