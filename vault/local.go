package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenproxy/tokenproxy/internal/safeio"
)

// localFormat names the key file format; a file of another format is refused.
const localFormat = "tokenproxy-local-keyring/1"

// ErrKeyFile reports a key file that is missing, unreadable, malformed or
// too widely readable.
var ErrKeyFile = errors.New("local keyring")

// Local is a KEK kept in a 0600 file: the embedded default, meant for
// evaluation. Its keys never leave the machine but are only as safe as the
// file, hence the warning at every start.
type Local struct {
	path string
	mu   sync.Mutex
	file localFile
}

type localFile struct {
	Format  string            `json:"format"`
	ID      string            `json:"id"`
	Current int               `json:"current"`
	Keys    map[string]string `json:"keys"` // version → base64 key
}

// LocalOptions configures OpenLocal.
type LocalOptions struct {
	// Create makes a new key file when none exists. The caller allows it
	// only while the map holds no wrapped keys, so a lost key file is
	// reported instead of silently replaced.
	Create bool
	Logger *slog.Logger
}

// OpenLocal opens (or creates) the key file at path.
func OpenLocal(path string, opts LocalOptions) (*Local, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	l := &Local{path: path}
	err := l.load()
	if errors.Is(err, fs.ErrNotExist) && opts.Create {
		err = l.create()
	}
	if err != nil {
		return nil, err
	}
	log.Warn("local keyring in use: it is meant for evaluation only; production configurations name Vault",
		"event", "local_keyring", "path", path, "keyring_id", l.file.ID)
	return l, nil
}

func (l *Local) load() error {
	info, err := os.Stat(l.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: key file %s does not exist (restore it from your backup; a new one is only created for an empty map): %w", ErrKeyFile, l.path, err)
		}
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: key file %s has mode %04o; it must be readable by its owner only (chmod 600 %s)", ErrKeyFile, l.path, perm, l.path)
	}
	data, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Errorf("%w: read key file: %w", ErrKeyFile, err)
	}
	if err := json.Unmarshal(data, &l.file); err != nil {
		return fmt.Errorf("%w: key file %s is not a tokenproxy keyring: %w", ErrKeyFile, l.path, err)
	}
	if l.file.Format != localFormat || l.file.ID == "" || l.file.Current < 1 {
		return fmt.Errorf("%w: key file %s: format %q, want %q with an id and a current version", ErrKeyFile, l.path, l.file.Format, localFormat)
	}
	if _, err := l.key(l.file.Current); err != nil {
		return err
	}
	return nil
}

func (l *Local) create() error {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	l.file = localFile{Format: localFormat, ID: hex.EncodeToString(id), Current: 0, Keys: map[string]string{}}
	l.addKey()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return l.write(os.O_EXCL)
}

func (l *Local) addKey() {
	k := make([]byte, DataKeyBytes)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	l.file.Current++
	l.file.Keys[strconv.Itoa(l.file.Current)] = base64.StdEncoding.EncodeToString(k)
}

// write replaces the key file atomically (internal/safeio): a crash leaves
// the old file or the new one, never half of one. With os.O_EXCL in flag,
// a key file that appeared meanwhile is not replaced.
func (l *Local) write(flag int) error {
	data, err := json.MarshalIndent(l.file, "", "  ")
	if err != nil {
		return err
	}
	err = safeio.WriteFileFunc(l.path, 0o600, func(f *os.File) error {
		if _, err := f.Write(append(data, '\n')); err != nil {
			return err
		}
		if flag&os.O_EXCL != 0 {
			if _, serr := os.Lstat(l.path); serr == nil {
				return fmt.Errorf("key file %s appeared while creating it", l.path)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: write key file: %w", ErrKeyFile, err)
	}
	return nil
}

func (l *Local) key(v int) ([]byte, error) {
	s, ok := l.file.Keys[strconv.Itoa(v)]
	if !ok {
		return nil, fmt.Errorf("%w: key file %s (keyring %s) has no version %d", ErrKeyFile, l.path, l.file.ID, v)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != DataKeyBytes {
		return nil, fmt.Errorf("%w: key file %s: version %d is not a 256-bit base64 key", ErrKeyFile, l.path, v)
	}
	return k, nil
}

func (l *Local) aead(v int) (cipher.AEAD, error) {
	k, err := l.key(v)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// additionalData binds a wrapped key to this keyring and KEK version.
func (l *Local) additionalData(v int) []byte {
	return []byte("tokenproxy-local-kek/" + l.file.ID + "/v" + strconv.Itoa(v))
}

// NewDataKey implements KEK.
func (l *Local) NewDataKey(ctx context.Context) ([]byte, []byte, error) {
	plain := make([]byte, DataKeyBytes)
	if _, err := rand.Read(plain); err != nil {
		return nil, nil, err
	}
	w, err := l.wrap(plain)
	return plain, w, err
}

func (l *Local) wrap(plain []byte) ([]byte, error) {
	l.mu.Lock()
	v := l.file.Current
	l.mu.Unlock()
	a, err := l.aead(v)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := a.Seal(nonce, nonce, plain, l.additionalData(v))
	return fmt.Appendf(nil, "local:%s:v%d:%s", l.file.ID, v, base64.RawURLEncoding.EncodeToString(sealed)), nil
}

// Unwrap implements KEK.
func (l *Local) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	parts := strings.SplitN(string(wrapped), ":", 4)
	if len(parts) != 4 || parts[0] != "local" || !strings.HasPrefix(parts[2], "v") {
		return nil, fmt.Errorf("%w: %w: wrapped key is not from a local keyring (was the map created with Vault?)", ErrKeyFile, ErrForeignKEK)
	}
	if parts[1] != l.file.ID {
		return nil, fmt.Errorf("%w: %w: wrapped key belongs to keyring %s but key file %s holds keyring %s: restore the original key file",
			ErrKeyFile, ErrForeignKEK, parts[1], l.path, l.file.ID)
	}
	v, err := strconv.Atoi(parts[2][1:])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed wrapped key version", ErrKeyFile)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed wrapped key", ErrKeyFile)
	}
	a, err := l.aeadReloading(v)
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize() {
		return nil, fmt.Errorf("%w: malformed wrapped key", ErrKeyFile)
	}
	plain, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], l.additionalData(v))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped key fails authentication: %w", ErrKeyFile, err)
	}
	return plain, nil
}

// aeadReloading returns KEK version v, reading the key file again when v
// is newer than the file this process read: in a cluster evaluated with
// the local keyring, `proxy keys rotate` added it to the shared file (or
// the operator copied the rotated file here) while this node served, and
// the data key versions added with it are wrapped under it.
func (l *Local) aeadReloading(v int) (cipher.AEAD, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v > l.file.Current {
		fresh := &Local{path: l.path}
		if err := fresh.load(); err != nil {
			return nil, err
		}
		if fresh.file.ID == l.file.ID { // another file is never taken on
			l.file = fresh.file
		}
	}
	return l.aead(v)
}

// Rotate implements KEK: it adds a key version to the file.
func (l *Local) Rotate(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addKey()
	return l.write(0)
}

// Rewrap implements KEK.
func (l *Local) Rewrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	plain, err := l.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, err
	}
	return l.wrap(plain)
}

// Status implements KEK.
func (l *Local) Status(ctx context.Context) (Status, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Provider: "local-keyring", Location: l.path + " (keyring " + l.file.ID + ")",
		CurrentVersion: l.file.Current, MinDecrypt: 1}, nil
}

// Close implements KEK.
func (l *Local) Close() error { return nil }
