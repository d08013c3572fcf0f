package tokenize

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
	"github.com/tokenproxy/tokenproxy/vault"
)

// errTokenSpaceExhausted would need 2^256 addresses; it exists so the loop
// that lengthens tokens on collision has an end.
var errTokenSpaceExhausted = errors.New("no free token length left")

// ErrAlreadyToken refuses to tokenize an address at the relay domain: a
// token of a token would resolve to the first token, never to the customer.
var ErrAlreadyToken = errors.New("address is at the relay domain: already a token")

// Options configures a Map.
type Options struct {
	Format    Format
	Tenant    string            // mixed into every HMAC: one key, several tenants
	LocalCase address.LocalCase // default address.LocalFold
	// MinLength is the shortest Format.Length accepted; 0 means 16 (80
	// bits). Only tests go lower, to force collisions.
	MinLength int
	// LastSeenGranularity bounds last-seen writes to one per token per
	// period; default 1 hour.
	LastSeenGranularity time.Duration
	// FlushInterval is how often pending last-seen times are written;
	// default 30 seconds.
	FlushInterval time.Duration
	// KnownCacheSize bounds the in-memory cache of known addresses;
	// 0 means 131072 entries, -1 turns the cache off.
	KnownCacheSize int
	// Audit, when set, receives the creation record of every new token
	// and the record of every expiry, committed with the change (see
	// Auditor). While it is not ready Tokenize creates nothing and
	// returns ErrAudit: a token whose creation cannot be audited is not
	// created (DESIGN.md "Compliance and audit").
	Audit Auditor
	// SuppressErased makes erasure keep the address's keyed hash in the
	// tombstone, and Tokenize refuse that address from then on
	// (ErrErasedSubject) instead of giving it a new token: a suppression
	// list that holds no address.
	SuppressErased bool
	// StaleGrace is how long after the store stopped being fresh
	// (Freshness) Tokenize still answers known addresses from its cache,
	// so that known senders ride out a short loss of the cluster; after
	// it, they are looked up in the store like new ones. 0: not at all.
	StaleGrace time.Duration
	// ReloadKeys, when set and the store is a KeysWatcher, keeps the
	// map's keys in step with the store's: a version another node added
	// is used without a restart (UpdateKeys).
	ReloadKeys ReloadKeys
	Now        func() time.Time
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.MinLength == 0 {
		o.MinLength = DefaultTokenLength
	}
	if o.LocalCase == "" {
		o.LocalCase = address.LocalFold
	}
	if o.LastSeenGranularity == 0 {
		o.LastSeenGranularity = time.Hour
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.KnownCacheSize == 0 {
		o.KnownCacheSize = 1 << 17
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Map is the token map: AEAD-encrypted records in a Store, keyed by a
// Keyring held in memory. Its methods make no key-provider call.
type Map struct {
	store   Store
	opts    Options
	log     *slog.Logger
	ks      atomic.Pointer[keyset] // the data keys; UpdateKeys swaps them
	ksMu    sync.Mutex             // orders UpdateKeys calls
	rekeyed chan struct{}          // a newer record key: re-encrypt

	fresh  Freshness // nil: a store only this process writes
	touch  *toucher
	known  *knownCache
	outbox *outbox
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// Issued is the result of Tokenize.
type Issued struct {
	Local   string // token local part, canonical form
	Address string // token at the relay domain
	New     bool   // created by this call (Map: durable before return; Stage: staged, durable once committed)
}

// Entry is a resolved token.
type Entry struct {
	Local, Address    string // token
	Original          string // customer address as first seen
	DisplayName       string
	KeyVersion        uint32 // token key version
	Created, LastSeen time.Time
}

// NewMap wraps an open Store. It starts background work (last-seen
// flushing, re-encryption after a record key rotation, the audit outbox,
// cache invalidation from the store's watch) that Close stops.
func NewMap(store Store, keys *vault.Keyring, opts Options) (*Map, error) {
	opts.defaults()
	if err := opts.Format.Validate(opts.MinLength); err != nil {
		return nil, err
	}
	ks, err := newKeyset(keys)
	if err != nil {
		return nil, err
	}
	m := &Map{store: store, opts: opts, log: opts.Logger, rekeyed: make(chan struct{}, 1)}
	m.ks.Store(ks)
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.touch = newToucher(m)
	m.known = newKnownCache(opts.KnownCacheSize)
	m.fresh, _ = store.(Freshness)
	if m.outbox, err = newOutbox(m, opts.Audit); err != nil {
		cancel()
		return nil, err
	}
	if opts.Audit != nil {
		m.goBackground(func() {
			defer close(m.outbox.stopped)
			m.outbox.run(ctx)
		})
		if t, ok := store.(OutboxTakeover); ok {
			takenOver := t.TakenOver(ctx)
			m.goBackground(func() { m.outbox.adopt(takenOver) })
		}
	}
	m.goBackground(func() { m.touch.run(ctx) })
	m.goBackground(func() { m.reencryptLed(ctx) })
	if changed := store.Watch(ctx); changed != nil {
		m.goBackground(func() { m.forgetChanged(ctx, changed) })
	}
	if kw, ok := store.(KeysWatcher); ok && opts.ReloadKeys != nil {
		changed := kw.WatchKeys(ctx)
		m.goBackground(func() { m.followKeys(ctx, changed, opts.ReloadKeys) })
	}
	m.awaitFresh(ctx)
	return m, nil
}

// goBackground runs fn in a goroutine that Close waits for; a panic is
// logged, never fatal to the process.
func (m *Map) goBackground(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				m.log.Error("token map background task panicked", "event", "panic", "panic", fmt.Sprint(r))
			}
		}()
		fn()
	}()
}

// Close stops background work, writes pending last-seen times and
// delivers the creation records still in the outbox (bounded by
// closeDeliverTimeout: what is left is delivered at the next start). It
// does not close the DB.
func (m *Map) Close() error {
	var err error
	m.closed.Do(func() {
		m.stop()
		m.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), closeDeliverTimeout)
		defer cancel()
		err = errors.Join(m.touch.flush(), m.outbox.flush(ctx))
	})
	return err
}

var _ Elector = (*Map)(nil)

// Lead implements Elector for work on the map that must run on one node
// of a cluster at a time (the retention sweeper's): through the store
// when it holds elections, else at once, as the only node.
func (m *Map) Lead(ctx context.Context, task string) (context.Context, error) {
	if e, ok := m.store.(Elector); ok {
		return e.Lead(ctx, task)
	}
	return ctx, ctx.Err()
}

// SyncAudit returns once the creation records of every token committed
// before the call are in the audit trail. Readers of the trail that must
// see them (a subject's export, a verify) call it first: delivery lags
// commits by up to deliveryLinger.
func (m *Map) SyncAudit(ctx context.Context) error { return m.outbox.sync(ctx) }

// closeDeliverTimeout bounds Close's last delivery to the audit trail.
const closeDeliverTimeout = 10 * time.Second

// Format returns the token format.
func (m *Map) Format() Format { return m.opts.Format }

type versionedMAC struct {
	version uint32
	mac     MAC
}

// macs returns the address's keyed hash under every token key version,
// newest first: an address tokenized before a token-key rotation keeps its
// token.
func (m *Map) macs(a address.Address) []versionedMAC {
	ks := m.keys()
	out := make([]versionedMAC, len(ks.tokVer))
	for i, v := range ks.tokVer {
		out[i] = versionedMAC{v, ks.tokKey[v].derive(m.opts.Tenant, a)}
	}
	return out
}

// Tokenize returns the token of an address, creating it on first sight. A
// new token is committed (fsync) before Tokenize returns. The inbound
// route stages a message's new tokens instead (Begin): a message refused
// after its rewrite must leave none behind (DESIGN.md invariant 4).
func (m *Map) Tokenize(ctx context.Context, addr, displayName string) (Issued, error) {
	a, err := m.normalize(ctx, addr)
	if err != nil {
		return Issued{}, err
	}
	if iss, done, err := m.tokenizeFast(ctx, a, address.Trim(addr), displayName); done {
		return iss, err
	}
	iss, nt, err := m.existing(ctx, a, displayName)
	if err != nil || nt == nil {
		return iss, err
	}
	iss, err = m.create(ctx, address.Trim(addr), displayName, nt.cur)
	if err == nil {
		m.remember(a, iss.Local, nt.cur.version, displayName)
	}
	return iss, err
}

// normalize is the address Tokenize works on; an address at the relay
// domain is ErrAlreadyToken.
func (m *Map) normalize(ctx context.Context, addr string) (address.Address, error) {
	if err := ctx.Err(); err != nil {
		return address.Address{}, err
	}
	a, err := address.Normalize(addr, m.opts.LocalCase)
	if err != nil {
		return address.Address{}, err
	}
	if a.Domain == m.opts.Format.Domain {
		return address.Address{}, ErrAlreadyToken
	}
	return a, nil
}

// newToken is what a new address's token needs: its keyed hash under the
// newest token key, and the token that was free for it when looked up.
type newToken struct {
	cur  versionedMAC
	free string
}

// existing returns the token of a known address, from the cache or the
// store, or, for a new address (nil *newToken only when known), what its
// token would be.
func (m *Map) existing(ctx context.Context, a address.Address, displayName string) (Issued, *newToken, error) {
	if e, ok := m.known.get(a); ok && m.cacheUsable() {
		m.known.hit()
		iss, err := m.knownToken(ctx, a, e, displayName)
		return iss, nil, err
	}
	m.known.miss()
	macs := m.macs(a)
	local, rec, free, err := m.find(ctx, macs)
	if err != nil {
		return Issued{}, nil, err
	}
	if rec == nil {
		return Issued{}, &newToken{cur: macs[0], free: free}, nil
	}
	t, _ := m.opts.Format.Parse(local)
	e := knownEntry{local: local, version: t.Version, nameTag: rec.nameTag, lastSeen: rec.lastSeen}
	m.known.put(a, e)
	iss, err := m.knownToken(ctx, a, e, displayName)
	return iss, nil, err
}

// remember caches a token just committed for its address.
func (m *Map) remember(a address.Address, local string, version uint32, displayName string) {
	m.known.put(a, knownEntry{local: local, version: version,
		nameTag: m.nameTag(version, displayName), lastSeen: m.opts.Now().Unix()})
}

// knownToken finishes Tokenize for a known address: a changed display name
// is stored, the use is noted for last-seen.
func (m *Map) knownToken(ctx context.Context, a address.Address, e knownEntry, displayName string) (Issued, error) {
	if displayName != "" {
		if tag := m.nameTag(e.version, displayName); tag != e.nameTag {
			if err := m.rename(ctx, e.local, displayName); err != nil {
				return Issued{}, err
			}
			e.nameTag = tag
			m.known.put(a, e)
		}
	}
	if at, queued := m.touch.seen(e.local, e.lastSeen); queued {
		m.known.touched(a, at)
	}
	return Issued{Local: e.local, Address: m.opts.Format.Address(e.local)}, nil
}

// find looks an address up under each token key version. For an address
// it does not find (nil record), free is the token it would take under the
// newest version.
func (m *Map) find(ctx context.Context, macs []versionedMAC) (local string, rec *record, free string, err error) {
	err = m.store.View(ctx, func(tx ReadTx) error {
		for i, vm := range macs {
			var err error
			if local, rec, err = m.probe(tx, vm); rec != nil || err != nil {
				return err
			}
			if i == 0 {
				free = local
			}
		}
		local = ""
		return nil
	})
	if errors.Is(err, ErrErasedSubject) || errors.Is(err, ErrStore) {
		return "", nil, "", err // ErrStore: a damaged store, said by View
	}
	if err != nil {
		return "", nil, "", fmt.Errorf("%w: token look-up: %w", ErrStore, err)
	}
	return local, rec, free, nil
}

// probe finds an address's token by open addressing: the token is a
// prefix of the address's MAC, lengthened on collision, so the address sits
// at the first length that was free when it was created. Lengths that are
// taken by another address or by a tombstone are skipped; slots are never
// freed, so the first empty length ends the search. It returns the token
// and its record when found, or the free token and a nil record.
func (m *Map) probe(tx ReadTx, vm versionedMAC) (string, *record, error) {
	return m.probeSkipping(tx, vm, nil)
}

// probeSkipping is probe with the free tokens that taken reports (nil:
// none) treated as taken by another address: those another message's
// staged tokens hold (Stage).
func (m *Map) probeSkipping(tx ReadTx, vm versionedMAC, taken func(local string) bool) (string, *record, error) {
	f := m.opts.Format
	for n := f.Length; n <= maxTokenLength; n++ {
		local := f.Local(vm.version, vm.mac, n)
		raw, err := tx.Token(local)
		if err != nil {
			return "", nil, err
		}
		if raw == nil && taken != nil && taken(local) {
			continue
		}
		if raw == nil {
			return local, nil, nil
		}
		rec, err := decodeLive(raw)
		if errors.Is(err, ErrUnknownToken) {
			if m.opts.SuppressErased && suppressed(raw, vm.mac) {
				return "", nil, ErrErasedSubject
			}
			continue // erased: its token is never reissued
		}
		if err != nil {
			return "", nil, fmt.Errorf("token %s: %w", local, err)
		}
		if rec.mac == vm.mac {
			return local, rec, nil
		}
	}
	return "", nil, errTokenSpaceExhausted
}

// create writes a new token in a group commit. The function may run more
// than once (a failed shared commit is retried call by call), so it probes
// again inside the transaction.
// original is the address as the customer wrote it: replies go back to
// exactly that form, since RFC 5321 section 2.4 lets the receiving host
// treat local parts case-sensitively.
func (m *Map) create(ctx context.Context, original, name string, cur versionedMAC) (Issued, error) {
	if err := m.outbox.ready(ctx); err != nil {
		return Issued{}, err
	}
	actor := m.outbox.actor(ctx)
	at := m.opts.Now()
	now := at.Unix()
	var out Issued
	err := m.store.Update(ctx, func(tx Tx) error {
		local, rec, err := m.probe(tx, cur)
		if err != nil {
			return err
		}
		out = Issued{Local: local, New: rec == nil}
		if rec != nil {
			return nil // a concurrent session created it first
		}
		rec = &record{created: now, lastSeen: now, mac: cur.mac, nameTag: m.nameTag(cur.version, name)}
		m.seal(rec, local, original, name)
		if err := tx.PutToken(local, rec.encode()); err != nil {
			return err
		}
		return m.outbox.put(tx, outboxEntry{Event: EventCreated, Token: local, Actor: actor, At: at})
	})
	if errors.Is(err, ErrErasedSubject) {
		return Issued{}, err
	}
	if err != nil {
		return Issued{}, fmt.Errorf("%w: create token: %w", ErrStore, err)
	}
	if out.New {
		m.outbox.added(1)
	}
	out.Address = m.opts.Format.Address(out.Local)
	return out, nil
}

// rename stores a changed display name.
func (m *Map) rename(ctx context.Context, local, name string) error {
	err := m.store.Update(ctx, func(tx Tx) error {
		rec, err := liveRecord(tx, local)
		if err != nil {
			return err
		}
		addr, _, err := m.open(rec, local)
		if err != nil {
			return err
		}
		t, _ := m.opts.Format.Parse(local)
		rec.nameTag = m.nameTag(t.Version, name)
		m.seal(rec, local, addr, name)
		return tx.PutToken(local, rec.encode())
	})
	if err != nil && !errors.Is(err, ErrRecordAuth) {
		return fmt.Errorf("%w: update display name: %w", ErrStore, err)
	}
	return err
}

// nameTag keys a display name's tag with the token's key version. Every
// version a token can carry is in the keyset: versions are never removed.
func (m *Map) nameTag(version uint32, name string) [8]byte {
	return m.keys().tokKey[version].nameTag(name)
}

// seal encrypts a record under the newest record key.
func (m *Map) seal(rec *record, local, addr, name string) {
	ks := m.keys()
	rec.seal(ks.aeads[ks.recVer], ks.recVer, local, addr, name)
}

func (m *Map) open(rec *record, local string) (string, string, error) {
	a, ok := m.keys().aeads[rec.keyVersion]
	if !ok {
		return "", "", fmt.Errorf("%w: record key version %d", vault.ErrNoKey, rec.keyVersion)
	}
	return rec.open(a, local)
}

// Resolve returns the entry of a token and notes the use for retention
// (last seen). Tokens are matched case-insensitively; a malformed, unknown
// or erased token is ErrUnknownToken, a tampered record ErrRecordAuth.
func (m *Map) Resolve(ctx context.Context, token string) (Entry, error) {
	// A resolution is the one answer that could hand out an erased
	// address, so a node that lost freshness refuses it at once (fail
	// closed, DESIGN.md, Store) instead of trying the cluster.
	if err := m.Fresh(); err != nil {
		return Entry{}, fmt.Errorf("resolve: %w", err)
	}
	e, lastSeen, err := m.read(ctx, token)
	if err == nil {
		m.touch.seen(e.Local, lastSeen)
	}
	return e, err
}

// Inspect is Resolve without noting a use: a compliance officer reading
// a token must not keep it from expiring.
func (m *Map) Inspect(ctx context.Context, token string) (Entry, error) {
	e, _, err := m.read(ctx, token)
	return e, err
}

// read returns a token's entry and its stored last-seen time.
func (m *Map) read(ctx context.Context, token string) (Entry, int64, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, 0, err
	}
	t, err := m.opts.Format.Parse(token)
	if err != nil {
		return Entry{}, 0, err
	}
	var rec *record
	err = m.store.View(ctx, func(tx ReadTx) error {
		var err error
		if rec, err = liveRecord(tx, t.Local); err != nil {
			return err
		}
		return withSeen(tx, t.Local, rec)
	})
	if err != nil {
		return Entry{}, 0, err
	}
	e, err := m.entry(t, rec)
	return e, rec.lastSeen, err
}

func (m *Map) entry(t Token, rec *record) (Entry, error) {
	addr, name, err := m.open(rec, t.Local)
	if err != nil {
		return Entry{}, err
	}
	return Entry{
		Local: t.Local, Address: m.opts.Format.Address(t.Local), Original: addr, DisplayName: name,
		KeyVersion: t.Version, Created: time.Unix(rec.created, 0), LastSeen: time.Unix(rec.lastSeen, 0),
	}, nil
}

// Lookup returns the tokens of an address (subject access): one per token
// key version it was seen under.
func (m *Map) Lookup(ctx context.Context, addr string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a, err := address.Normalize(addr, m.opts.LocalCase)
	if err != nil {
		return nil, err
	}
	var out []string
	err = m.store.View(ctx, func(tx ReadTx) error {
		for _, vm := range m.macs(a) {
			local, rec, err := m.probe(tx, vm)
			if errors.Is(err, ErrErasedSubject) {
				continue // erased and suppressed: nothing is held
			}
			if err != nil {
				return err
			}
			if rec != nil {
				out = append(out, local)
			}
		}
		return nil
	})
	return out, err
}

// Erase removes a token's address and display name. The token stays as a
// tombstone, so it is refused from then on and never issued again, not
// even to another address whose hash happens to share its prefix.
func (m *Map) Erase(ctx context.Context, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := m.opts.Format.Parse(token)
	if err != nil {
		return err
	}
	if err := m.store.Update(ctx, func(tx Tx) error { return m.erase(tx, t.Local) }); err != nil {
		return err
	}
	m.forget(t.Local)
	return m.store.Wipe(ctx) // see EraseSubject
}

// erase turns a live record into a tombstone inside tx, and removes its
// last-seen times where the store keeps them apart: two writes at most
// (eraseWrites).
func (m *Map) erase(tx Tx, local string) error {
	rec, err := liveRecord(tx, local)
	if err != nil {
		return err
	}
	var keep *MAC
	if m.opts.SuppressErased {
		keep = &rec.mac
	}
	if seen, ok := tx.(SeenTx); ok {
		if err := seen.DeleteSeen(local); err != nil {
			return err
		}
	}
	return tx.PutToken(local, tombstone(m.opts.Now(), keep))
}

// eraseWrites bounds the writes of one erase, for batches under MaxBatch.
const eraseWrites = 2

// forget drops an erased or changed token from the caches, after its
// commit: a pending last-seen time would rewrite it, and the known-address
// cache would keep serving it. "" (a store's watch that lost events) means
// any token may have changed: the cache starts over.
func (m *Map) forget(local string) {
	if local == "" {
		m.known.clear()
		return
	}
	m.touch.forget(local)
	m.known.drop(local)
}

// forgetChanged drops tokens another node changed, as the store's watch
// reports them, until ctx ends.
func (m *Map) forgetChanged(ctx context.Context, changed <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case local, ok := <-changed:
			if !ok {
				return
			}
			m.forget(local)
		}
	}
}

// Each calls fn for every live token, decrypted, in token order: the
// compliance iteration. It stops at fn's first error or when ctx ends.
func (m *Map) Each(ctx context.Context, fn func(Entry) error) error {
	return m.store.View(ctx, func(tx ReadTx) error {
		return tx.Tokens("", func(k string, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			rec, err := decodeLive(v)
			if errors.Is(err, ErrUnknownToken) {
				return true, nil // tombstone
			}
			if err != nil {
				return false, err
			}
			t, err := m.opts.Format.Parse(k)
			if err != nil {
				return false, fmt.Errorf("%w: key is not a token", ErrCorruptRecord)
			}
			if err := withSeen(tx, k, rec); err != nil {
				return false, err
			}
			e, err := m.entry(t, rec)
			if err != nil {
				return false, fmt.Errorf("token %s: %w", k, err)
			}
			return true, fn(e)
		})
	})
}

// liveRecord reads and decodes a token's record; a missing or erased one
// is ErrUnknownToken.
func liveRecord(tx ReadTx, local string) (*record, error) {
	raw, err := tx.Token(local)
	if err != nil {
		return nil, err
	}
	return decodeLive(raw)
}
