package quarantine

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
	"github.com/tokenproxy/tokenproxy/vault"
)

// Errors of the store; their text never holds content or a name.
var (
	ErrNotFound = errors.New("no such quarantined part")
	ErrBadRef   = errors.New("not a quarantine reference")
	ErrDamaged  = errors.New("quarantined part cannot be opened")
)

// Keys are the token map's data keys (*vault.Keyring).
type Keys interface {
	Current(p vault.Purpose) (uint32, []byte)
	Key(p vault.Purpose, v uint32) ([]byte, error)
}

// Item describes one quarantined part.
type Item struct {
	Ref     string    `json:"ref"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name,omitempty"` // as the CRM saw it: addresses are tokens
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
}

// Store is the quarantine directory.
type Store struct {
	dir  string
	keys Keys
	now  func() time.Time
}

// Open returns the store in dir, creating it 0700.
func Open(dir string, keys Keys) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return &Store{dir: dir, keys: keys, now: time.Now}, nil
}

// refRE is the form of the references the rewriter makes ("att-" and
// base32): anything else could name a path.
var refRE = regexp.MustCompile(`^att-[a-z2-7]{16}$`)

// ValidRef reports whether ref has the form of a reference.
func ValidRef(ref string) bool { return refRE.MatchString(ref) }

func (s *Store) path(ref string) (string, error) {
	if !refRE.MatchString(ref) {
		return "", ErrBadRef
	}
	return filepath.Join(s.dir, ref+".q"), nil
}

// Put seals a part and writes it durably; it.Created is set now.
func (s *Store) Put(ctx context.Context, it Item, content []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(it.Ref)
	if err != nil {
		return err
	}
	it.Created = s.now().UTC()
	sealed, err := s.seal(it, content)
	if err != nil {
		return err
	}
	return safeio.WriteFile(p, sealed, 0o600)
}

// List returns the quarantined parts, oldest first, opening only their
// descriptions.
func (s *Store) List(ctx context.Context) ([]Item, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "att-*.q"))
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it, _, err := s.read(strings.TrimSuffix(filepath.Base(n), ".q"), false)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Created.Before(items[j].Created) })
	return items, nil
}

// Get returns a part's description and content.
func (s *Store) Get(ctx context.Context, ref string) (Item, []byte, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, nil, err
	}
	return s.read(ref, true)
}

// Delete removes a part.
func (s *Store) Delete(ctx context.Context, ref string) error {
	p, err := s.path(ref)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return syncDir(s.dir)
}

// Sweep deletes the parts created before cutoff and returns their
// references.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) ([]string, error) {
	items, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, it := range items {
		if !it.Created.Before(cutoff) {
			break
		}
		if err := s.Delete(ctx, it.Ref); err != nil && !errors.Is(err, ErrNotFound) {
			return gone, err
		}
		gone = append(gone, it.Ref)
	}
	return gone, nil
}

// The file: magic, record key version, then the description and the
// content, each sealed with its own nonce and bound (additional data) to
// the magic, the version, the reference and its section.
const magic = "TPQ1"

func (s *Store) aead(version uint32, key []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key, nil, "tokenproxy quarantine v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func additional(version uint32, ref, section string) []byte {
	return fmt.Appendf(nil, "%s|%d|%s|%s", magic, version, ref, section)
}

func (s *Store) seal(it Item, content []byte) ([]byte, error) {
	v, key := s.keys.Current(vault.PurposeRecord)
	if key == nil {
		return nil, fmt.Errorf("quarantine: no record key")
	}
	g, err := s.aead(v, key)
	if err != nil {
		return nil, err
	}
	desc, _ := json.Marshal(it)
	out := binary.BigEndian.AppendUint32([]byte(magic), v)
	for _, sec := range []struct {
		name string
		b    []byte
	}{{"item", desc}, {"content", content}} {
		nonce := make([]byte, g.NonceSize())
		rand.Read(nonce)
		sealed := g.Seal(nil, nonce, sec.b, additional(v, it.Ref, sec.name))
		out = binary.BigEndian.AppendUint32(out, uint32(len(sealed)))
		out = append(append(out, nonce...), sealed...)
	}
	return out, nil
}

// read opens a file: the description, and the content if asked.
func (s *Store) read(ref string, content bool) (Item, []byte, error) {
	p, err := s.path(ref)
	if err != nil {
		return Item{}, nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Item{}, nil, ErrNotFound
	} else if err != nil {
		return Item{}, nil, err
	}
	if len(b) < 8 || string(b[:4]) != magic {
		return Item{}, nil, ErrDamaged
	}
	v := binary.BigEndian.Uint32(b[4:8])
	key, err := s.keys.Key(vault.PurposeRecord, v)
	if err != nil {
		return Item{}, nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	g, err := s.aead(v, key)
	if err != nil {
		return Item{}, nil, err
	}
	rest := b[8:]
	open := func(section string) ([]byte, error) {
		if len(rest) < 4 {
			return nil, ErrDamaged
		}
		n := int(binary.BigEndian.Uint32(rest))
		if n > len(rest)-4-g.NonceSize() {
			return nil, ErrDamaged
		}
		nonce, sealed := rest[4:4+g.NonceSize()], rest[4+g.NonceSize():4+g.NonceSize()+n]
		rest = rest[4+g.NonceSize()+n:]
		plain, err := g.Open(nil, nonce, sealed, additional(v, ref, section))
		if err != nil {
			return nil, ErrDamaged
		}
		return plain, nil
	}
	desc, err := open("item")
	if err != nil {
		return Item{}, nil, err
	}
	var it Item
	if err := json.Unmarshal(desc, &it); err != nil || it.Ref != ref {
		return Item{}, nil, ErrDamaged
	}
	if !content {
		return it, nil, nil
	}
	data, err := open("content")
	return it, data, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
