// Package vault holds the key providers of tokenproxy: HashiCorp Vault
// transit (production) and a local keyring file (evaluation).
//
// Both use envelope encryption (DESIGN.md, "Keys"): the provider is a key
// encryption key (KEK) that wraps 256-bit data keys. Only wrapped data keys
// are stored (in the map's meta bucket); each start unwraps them once and
// keeps them in memory, so steady state makes no provider call per message.
//
// It also owns signing with Vault transit keys (transitkey.go): the audit
// checkpoint signer (Transit.AuditSigner) and the DKIM signer
// (NewDKIMSigner, a crypto.Signer), one implementation of the read and
// sign calls behind both, so no other package imports the Vault API.
package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Purpose names what a data key is used for.
type Purpose string

const (
	// PurposeToken keys the HMAC that derives tokens. It rotates only on
	// purpose: a new version changes the tokens of new addresses.
	PurposeToken Purpose = "token"
	// PurposeRecord keys the AEAD that encrypts map records. It rotates
	// freely: records are re-encrypted in the background.
	PurposeRecord Purpose = "record"
)

// Purposes lists every purpose a keyring must hold.
var Purposes = []Purpose{PurposeToken, PurposeRecord}

// DataKeyBytes is the size of every data key (AES-256, HMAC-SHA256).
const DataKeyBytes = 32

// WrappedKey is a data key as it is stored: wrapped by the KEK, never plain.
type WrappedKey struct {
	Purpose Purpose
	Version uint32
	Wrapped []byte
}

// KEK wraps and unwraps data keys. Vault transit and the local keyring
// implement it.
type KEK interface {
	// NewDataKey returns a fresh 256-bit data key and its wrapped form.
	NewDataKey(ctx context.Context) (plain, wrapped []byte, err error)
	// Unwrap returns the plaintext of a wrapped data key.
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
	// Rotate makes a new KEK version current; older versions still unwrap.
	Rotate(ctx context.Context) error
	// Rewrap re-wraps a wrapped key under the current KEK version without
	// exposing its plaintext.
	Rewrap(ctx context.Context, wrapped []byte) ([]byte, error)
	// Status describes the KEK for `proxy keys status`.
	Status(ctx context.Context) (Status, error)
	// Close releases background work (token renewal).
	Close() error
}

// Status describes a KEK. It never holds key material.
type Status struct {
	Provider       string // "vault-transit" or "local-keyring"
	Location       string // Vault address and key, or the key file path
	CurrentVersion int
	MinDecrypt     int // oldest KEK version that still unwraps (0 if unknown)
}

// Store keeps the wrapped data keys. The token map's meta bucket implements
// it, so a backup of the map carries the wrapped keys it needs.
type Store interface {
	WrappedKeys(ctx context.Context) ([]WrappedKey, error)
	// PutWrappedKeys stores keys atomically, replacing any with the same
	// purpose and version.
	PutWrappedKeys(ctx context.Context, keys []WrappedKey) error
}

// KeyCreator is a Store that several processes share (etcd): it writes
// new key versions only if no other writer made the same versions first,
// so two nodes starting at once on an empty store, or two rotations at
// once, cannot overwrite each other's key (tokens sealed under the lost
// one would never open again). created is false when any of the versions
// existed; nothing is written then.
type KeyCreator interface {
	CreateWrappedKeys(ctx context.Context, keys []WrappedKey) (created bool, err error)
}

// createKeys writes new key versions, create-only where the store can.
func createKeys(ctx context.Context, store Store, keys []WrappedKey) (bool, error) {
	if c, ok := store.(KeyCreator); ok {
		return c.CreateWrappedKeys(ctx, keys)
	}
	return true, store.PutWrappedKeys(ctx, keys)
}

// createAttempts bounds the retries of a creation that lost to another
// writer: each retry reads what the winner wrote.
const createAttempts = 5

// ErrNoKey is returned for a purpose or version the keyring does not hold.
var ErrNoKey = errors.New("vault: no such data key")

// ErrForeignKEK reports wrapped data keys that this node's KEK did not
// wrap: another Vault transit key, another keyring file, or the other
// provider. In a cluster every node unwraps the same stored keys, so a
// node configured with its own KEK must refuse to start rather than
// create a map of its own; its text names the fix.
var ErrForeignKEK = errors.New("the map's data keys were wrapped by another key encryption key: " +
	"every node needs the same Vault transit key (or, for evaluation, the same keyring file)")

// Keyring holds unwrapped data keys in memory. It is read-only after Load
// and safe for concurrent use.
type Keyring struct {
	sets map[Purpose]map[uint32][]byte
}

// Current returns the newest version of a purpose's key.
func (r *Keyring) Current(p Purpose) (uint32, []byte) {
	vs := r.Versions(p)
	if len(vs) == 0 {
		return 0, nil
	}
	v := vs[len(vs)-1]
	return v, r.sets[p][v]
}

// Key returns one version of a purpose's key.
func (r *Keyring) Key(p Purpose, v uint32) ([]byte, error) {
	k, ok := r.sets[p][v]
	if !ok {
		return nil, fmt.Errorf("%w: %s key version %d", ErrNoKey, p, v)
	}
	return k, nil
}

// Versions lists a purpose's key versions, oldest first.
func (r *Keyring) Versions(p Purpose) []uint32 {
	vs := make([]uint32, 0, len(r.sets[p]))
	for v := range r.sets[p] {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs
}

// NewKeyring builds a keyring from plaintext keys; for tests and tools.
func NewKeyring(keys map[Purpose]map[uint32][]byte) *Keyring {
	return &Keyring{sets: keys}
}

// Load unwraps every stored data key. On first start (no key of a purpose
// stored yet) it creates version 1 through the KEK and stores only its
// wrapped form, before any token can be derived with it.
func Load(ctx context.Context, kek KEK, store Store) (*Keyring, error) {
	for range createAttempts {
		stored, err := store.WrappedKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("read wrapped keys: %w", err)
		}
		created, err := missingKeys(ctx, kek, stored)
		if err != nil {
			return nil, err
		}
		if len(created) == 0 {
			return unwrapAll(ctx, kek, stored)
		}
		ok, err := createKeys(ctx, store, created)
		if err != nil {
			return nil, fmt.Errorf("store wrapped keys: %w", err)
		}
		if ok {
			return unwrapAll(ctx, kek, append(stored, created...))
		}
		// Another node created them first: use its keys.
	}
	return nil, fmt.Errorf("store wrapped keys: other writers kept creating them first")
}

// missingKeys makes a version 1 data key for each purpose stored lacks.
func missingKeys(ctx context.Context, kek KEK, stored []WrappedKey) ([]WrappedKey, error) {
	var created []WrappedKey
	for _, p := range Purposes {
		if hasPurpose(stored, p) {
			continue
		}
		_, wrapped, err := kek.NewDataKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("create %s data key: %w", p, err)
		}
		created = append(created, WrappedKey{Purpose: p, Version: 1, Wrapped: wrapped})
	}
	return created, nil
}

func hasPurpose(keys []WrappedKey, p Purpose) bool {
	for _, k := range keys {
		if k.Purpose == p {
			return true
		}
	}
	return false
}

// unwrapAll unwraps the stored keys, including freshly created ones, so the
// first start proves the unwrap path an ordinary restart depends on.
func unwrapAll(ctx context.Context, kek KEK, stored []WrappedKey) (*Keyring, error) {
	r := &Keyring{sets: map[Purpose]map[uint32][]byte{}}
	for _, k := range stored {
		plain, err := kek.Unwrap(ctx, k.Wrapped)
		if err != nil {
			return nil, fmt.Errorf("unwrap %s data key v%d: %w", k.Purpose, k.Version, err)
		}
		if len(plain) != DataKeyBytes {
			return nil, fmt.Errorf("unwrap %s data key v%d: %d bytes, want %d", k.Purpose, k.Version, len(plain), DataKeyBytes)
		}
		if r.sets[k.Purpose] == nil {
			r.sets[k.Purpose] = map[uint32][]byte{}
		}
		r.sets[k.Purpose][k.Version] = plain
	}
	return r, nil
}

// RotateKEK makes a new KEK version current and rewraps every stored data
// key under it. Data keys, and so tokens and records, do not change.
func RotateKEK(ctx context.Context, kek KEK, store Store) (int, error) {
	stored, err := store.WrappedKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("read wrapped keys: %w", err)
	}
	if err := kek.Rotate(ctx); err != nil {
		return 0, fmt.Errorf("rotate key encryption key: %w", err)
	}
	for i, k := range stored {
		w, err := kek.Rewrap(ctx, k.Wrapped)
		if err != nil {
			return 0, fmt.Errorf("rewrap %s data key v%d: %w", k.Purpose, k.Version, err)
		}
		stored[i].Wrapped = w
	}
	if err := store.PutWrappedKeys(ctx, stored); err != nil {
		return 0, fmt.Errorf("store rewrapped keys: %w", err)
	}
	return len(stored), nil
}

// AddVersion creates a new data key version of a purpose and stores it
// wrapped. The caller reloads the keyring to use it.
func AddVersion(ctx context.Context, kek KEK, store Store, p Purpose) (uint32, error) {
	for range createAttempts {
		stored, err := store.WrappedKeys(ctx)
		if err != nil {
			return 0, fmt.Errorf("read wrapped keys: %w", err)
		}
		var latest uint32
		for _, k := range stored {
			if k.Purpose == p && k.Version > latest {
				latest = k.Version
			}
		}
		_, wrapped, err := kek.NewDataKey(ctx)
		if err != nil {
			return 0, fmt.Errorf("create %s data key: %w", p, err)
		}
		k := WrappedKey{Purpose: p, Version: latest + 1, Wrapped: wrapped}
		ok, err := createKeys(ctx, store, []WrappedKey{k})
		if err != nil {
			return 0, fmt.Errorf("store wrapped key: %w", err)
		}
		if ok {
			return k.Version, nil
		}
		// A concurrent rotation took this version: take the next one.
	}
	return 0, fmt.Errorf("store wrapped key: other writers kept adding versions first")
}

// Refresh returns have plus every stored data key version have lacks,
// unwrapped through kek: how a running node picks up a version that
// another node (or `proxy keys rotate`) added. Versions have holds are not
// unwrapped again, so a KEK rotation, which rewraps them without changing
// them, costs no KEK call. It returns have itself when nothing is new.
func Refresh(ctx context.Context, kek KEK, store Store, have *Keyring) (*Keyring, error) {
	stored, err := store.WrappedKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read wrapped keys: %w", err)
	}
	var fresh []WrappedKey
	for _, k := range stored {
		if _, ok := have.sets[k.Purpose][k.Version]; !ok {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) == 0 {
		return have, nil
	}
	added, err := unwrapAll(ctx, kek, fresh)
	if err != nil {
		return nil, err
	}
	return have.merged(added), nil
}

// merged returns a new keyring holding r's keys and more's: a Keyring is
// read-only once handed out, so it is never extended in place.
func (r *Keyring) merged(more *Keyring) *Keyring {
	out := &Keyring{sets: map[Purpose]map[uint32][]byte{}}
	for _, src := range []*Keyring{r, more} {
		for p, vs := range src.sets {
			if out.sets[p] == nil {
				out.sets[p] = map[uint32][]byte{}
			}
			for v, k := range vs {
				out.sets[p][v] = k
			}
		}
	}
	return out
}
