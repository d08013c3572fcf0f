package tokenize

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tokenproxy/tokenproxy/address"
)

// ErrStagedTokenTaken reports, at Commit, that a staged token can no
// longer be the address's token: between staging and commit another
// address took it, or the address was erased, or a concurrent commit gave
// the address another token. The message carries the staged token, so it
// must not be relayed; the routes answer 451 and the client's retry finds
// the committed token.
var ErrStagedTokenTaken = errors.New("staged token was taken before its commit: retry the message")

// Stage holds the new tokens of one message until the message has passed
// every check (DESIGN.md invariant 4: a refused message leaves no token
// and no audit record behind). It implements the same Tokenize, Resolve
// and Format the rewriter uses of the Map: a known address gets its token
// as from the Map; a new one gets the token it will have (derived, probed
// for collisions and sealed), held in memory only. Commit writes them all,
// with their creation records, before the message is relayed (invariant
// 3); a Stage that is dropped without Commit leaves nothing.
//
// A Stage is for one message; it is safe for concurrent use.
type Stage struct {
	m       *Map
	mu      sync.Mutex
	byKey   map[string]*stagedToken // normalized address → its staged token
	byLocal map[string]bool         // the staged tokens
	list    []*stagedToken          // in staging order
}

// stagedToken is a new token waiting for its commit: the record is
// sealed already, with the token as its associated data.
type stagedToken struct {
	addr     address.Address
	original string // as the customer wrote it (see create)
	local    string
	cur      versionedMAC
	rec      *record
	name     string
	index    int // in Stage.list
}

// Begin starts staging the new tokens of one message.
func (m *Map) Begin() *Stage {
	return &Stage{m: m, byKey: map[string]*stagedToken{}, byLocal: map[string]bool{}}
}

// Format returns the token format.
func (s *Stage) Format() Format { return s.m.Format() }

// Resolve resolves a committed token, as Map.Resolve: a staged token does
// not resolve before its commit.
func (s *Stage) Resolve(ctx context.Context, token string) (Entry, error) {
	return s.m.Resolve(ctx, token)
}

// Staged counts the new tokens staged so far, each once.
func (s *Stage) Staged() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.list)
}

// Tokenize returns the token of an address. Issued.New is true when this
// call staged it: the same address again in the message gets the same
// token with New false. Nothing is written before Commit.
func (s *Stage) Tokenize(ctx context.Context, addr, displayName string) (Issued, error) {
	a, err := s.m.normalize(ctx, addr)
	if err != nil {
		return Issued{}, err
	}
	if st := s.get(a); st != nil {
		s.rename(st, displayName)
		return s.issued(st, false), nil
	}
	iss, nt, err := s.m.existing(ctx, a, displayName)
	if err != nil || nt == nil {
		return iss, err
	}
	// Refused now rather than at the commit: a token whose creation cannot
	// be audited is not created (Options.Audit).
	if err := s.m.outbox.ready(ctx); err != nil {
		return Issued{}, err
	}
	if s.holds(nt.free) {
		// Another address of this message took that token (a collision):
		// look again past the tokens staged here.
		if nt.free, err = s.m.freeSkipping(ctx, nt.cur, s.holds); err != nil {
			return Issued{}, err
		}
	}
	st, staged, err := s.add(s.m.stageToken(a, address.Trim(addr), displayName, nt))
	if err != nil {
		return Issued{}, err
	}
	return s.issued(st, staged), nil
}

// holds reports whether a token is staged here.
func (s *Stage) holds(local string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byLocal[local]
}

// freeSkipping is the token a new address would take with the tokens
// taken reports counted as used.
func (m *Map) freeSkipping(ctx context.Context, cur versionedMAC, taken func(string) bool) (string, error) {
	var free string
	err := m.store.View(ctx, func(tx ReadTx) error {
		local, rec, err := m.probeSkipping(tx, cur, taken)
		if err == nil && rec != nil {
			err = ErrStagedTokenTaken // committed meanwhile: the message starts over
		}
		free = local
		return err
	})
	if err != nil && !errors.Is(err, ErrErasedSubject) && !errors.Is(err, ErrStagedTokenTaken) {
		return "", fmt.Errorf("%w: token look-up: %w", ErrStore, err)
	}
	return free, err
}

// rename gives a staged token the display name seen last, as Tokenize of
// the Map does for a known token: the envelope sender is staged without
// one, and the From field that follows names it. Staged tokens are
// replaced, never changed, so a record being read stays whole.
func (s *Stage) rename(st *stagedToken, name string) {
	if name == "" || name == st.name {
		return
	}
	nt := &newToken{cur: st.cur, free: st.local}
	renamed := s.m.stageToken(st.addr, st.original, name, nt)
	s.mu.Lock()
	defer s.mu.Unlock()
	renamed.index = st.index
	s.byKey[st.addr.String()] = renamed
	s.list[st.index] = renamed
}

func (s *Stage) get(a address.Address) *stagedToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[a.String()]
}

// add stages st unless a concurrent call staged the address first. A
// concurrent call that staged another address at st's token (a collision
// in a race: rare beyond counting) fails the message, which is retried.
func (s *Stage) add(st *stagedToken) (*stagedToken, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev := s.byKey[st.addr.String()]; prev != nil {
		return prev, false, nil
	}
	if s.byLocal[st.local] {
		return nil, false, fmt.Errorf("%w: token %s", ErrStagedTokenTaken, st.local)
	}
	s.byKey[st.addr.String()] = st
	s.byLocal[st.local] = true
	st.index = len(s.list)
	s.list = append(s.list, st)
	return st, true, nil
}

func (s *Stage) issued(st *stagedToken, isNew bool) Issued {
	return Issued{Local: st.local, Address: s.m.opts.Format.Address(st.local), New: isNew}
}

// stageToken builds a new token's record as create would write it.
// original is the address as the customer wrote it (see create).
func (m *Map) stageToken(a address.Address, original, name string, nt *newToken) *stagedToken {
	now := m.opts.Now().Unix()
	rec := &record{created: now, lastSeen: now, mac: nt.cur.mac, nameTag: m.nameTag(nt.cur.version, name)}
	m.seal(rec, nt.free, original, name)
	return &stagedToken{addr: a, original: original, local: nt.free, cur: nt.cur, rec: rec, name: name}
}

// Commit writes the staged tokens and their creation records and returns
// once they are durable, with the number of tokens it created (a token a
// concurrent message committed first is not counted). Tokens and records
// go in one Store.Update, or in several when there are more than the
// store's MaxBatch allows (two writes per token). If one of several
// updates fails, the ones before it stay committed: their tokens exist,
// each with its creation record (the trail stays complete), the message
// is refused (temporarily) and a retry of it finds them known. With the
// default limits (max_new_tokens 50) every store takes one update.
//
// The commit probes each token again inside its transaction: a token
// that is no longer the address's (see ErrStagedTokenTaken) fails it.
func (s *Stage) Commit(ctx context.Context) (int, error) {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	if len(list) == 0 {
		return 0, nil
	}
	if err := s.m.outbox.ready(ctx); err != nil {
		return 0, err
	}
	per := max(1, s.m.store.MaxBatch()/2) // a record and its creation record per token
	created := 0
	for start := 0; start < len(list); start += per {
		n, err := s.m.commitStaged(ctx, list[start:min(start+per, len(list))])
		created += n
		if err != nil {
			return created, err
		}
	}
	for _, st := range list {
		s.m.remember(st.addr, st.local, st.cur.version, st.name)
	}
	return created, nil
}

// commitStaged writes one batch of staged tokens in one transaction.
func (m *Map) commitStaged(ctx context.Context, batch []*stagedToken) (int, error) {
	actor := m.outbox.actor(ctx)
	at := m.opts.Now()
	var created int
	err := m.store.Update(ctx, func(tx Tx) error {
		// fn may run more than once (Store.Update): start over each time.
		created = 0
		written := make(map[string]bool, len(batch))
		for _, st := range batch {
			n, err := m.putStaged(tx, st, actor, at, written)
			if err != nil {
				return err
			}
			created += n
		}
		return nil
	})
	if errors.Is(err, ErrErasedSubject) || errors.Is(err, ErrStagedTokenTaken) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("%w: commit staged tokens: %w", ErrStore, err)
	}
	m.outbox.added(created)
	return created, nil
}

// putStaged writes one staged token and its creation record, unless a
// concurrent commit made the same token first. written holds the tokens
// this transaction wrote: a store need not read its own uncommitted
// writes (etcd), so the probe counts them as taken, as Tokenize did when
// two addresses of the message collided.
func (m *Map) putStaged(tx Tx, st *stagedToken, actor string, at time.Time, written map[string]bool) (int, error) {
	local, rec, err := m.probeSkipping(tx, st.cur, func(l string) bool { return written[l] })
	if err != nil {
		return 0, err
	}
	if local != st.local {
		return 0, fmt.Errorf("%w: token %s", ErrStagedTokenTaken, st.local)
	}
	written[local] = true
	if rec != nil {
		return 0, nil // a concurrent message committed the same token first
	}
	if err := tx.PutToken(local, st.rec.encode()); err != nil {
		return 0, err
	}
	return 1, m.outbox.put(tx, outboxEntry{Event: EventCreated, Token: local, Actor: actor, At: at})
}
