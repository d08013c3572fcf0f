package smtp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of the hashes HashPassword writes: the second recommended
// option of RFC 9106 §4 (64 MiB), with two lanes.
const (
	argon2Memory  = 64 * 1024 // KiB
	argon2Time    = 3
	argon2Threads = 2
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Bounds on hashes read from the configuration, so a hostile or mistyped
// hash cannot make one AUTH allocate gigabytes or spin for minutes.
const (
	maxArgon2Memory  = 1 << 20 // KiB, 1 GiB
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	// RFC 9106 §3.1 allows salts from 8 bytes; 64 is far beyond any encoder.
	minArgon2Salt, maxArgon2Salt = 8, 64
	// Tags shorter than 16 bytes would make a random password too likely to
	// match; RFC 9106 allows 4.
	minArgon2Key, maxArgon2Key = 16, 64
	// bcrypt cost 15 is about 2 s on current hardware; MaxCost (31) is days.
	maxBcryptCost = 15
)

// argon2idPrefix is the PHC identifier of Argon2id version 0x13 (decimal 19),
// the only version golang.org/x/crypto/argon2 computes.
const argon2idPrefix = "$argon2id$v=19$"

// dummySalt is the fixed salt of DummyCheck; its output is thrown away.
var dummySalt = []byte("tokenproxy-dummy")

// CheckPassword reports whether password matches hash, a bcrypt hash
// ($2a$, $2b$ or $2y$) or an Argon2id hash in the PHC string format of the
// reference implementation:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<tag>
//
// with salt and tag in unpadded standard base64. The tag is compared in
// constant time. A hash that ValidatePasswordHash refuses (malformed, or with
// parameters beyond the bounds above) never matches.
func CheckPassword(hash, password string) bool {
	if isBcrypt(hash) {
		return validateBcrypt(hash) == nil &&
			bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	p, err := parseArgon2id(hash)
	if err != nil {
		return false
	}
	tag := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.tag)))
	return subtle.ConstantTimeCompare(tag, p.tag) == 1
}

// ValidatePasswordHash reports why CheckPassword would never accept hash, so
// the configuration can be refused at load instead of every AUTH failing.
// The error names the format or parameter at fault, never the salt or hash.
func ValidatePasswordHash(hash string) error {
	if isBcrypt(hash) {
		return validateBcrypt(hash)
	}
	if strings.HasPrefix(hash, "$argon2id$") {
		_, err := parseArgon2id(hash)
		return err
	}
	return errors.New("password hash: not argon2id ($argon2id$...) or bcrypt ($2a$, $2b$, $2y$)")
}

// HashPassword returns an Argon2id PHC string for password (m=65536, t=3,
// p=2, 16-byte random salt, 32-byte tag), as written by `proxy
// hash-password`.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("password: empty password")
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: read salt: %w", err)
	}
	tag := argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", argon2idPrefix, argon2Memory, argon2Time, argon2Threads,
		b64.EncodeToString(salt), b64.EncodeToString(tag)), nil
}

// DummyCheck spends about the time of a real check against a hash made by
// HashPassword. Call it for an unknown user name so that the reply time does
// not tell which user names exist.
func DummyCheck(password string) {
	argon2.IDKey([]byte(password), dummySalt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
}

// argon2Hash is a parsed Argon2id PHC string.
type argon2Hash struct {
	memory, time uint32
	threads      uint8
	salt, tag    []byte
}

// parseArgon2id parses and bounds-checks an Argon2id PHC string.
func parseArgon2id(hash string) (*argon2Hash, error) {
	rest, ok := strings.CutPrefix(hash, argon2idPrefix)
	if !ok {
		return nil, errors.New("argon2id: not version 19")
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return nil, fmt.Errorf("argon2id: %d fields after the version, want 3", len(fields))
	}
	p, err := parseArgon2Params(fields[0])
	if err != nil {
		return nil, err
	}
	if p.salt, err = decodePHC(fields[1], minArgon2Salt, maxArgon2Salt); err != nil {
		return nil, fmt.Errorf("argon2id: salt: %w", err)
	}
	if p.tag, err = decodePHC(fields[2], minArgon2Key, maxArgon2Key); err != nil {
		return nil, fmt.Errorf("argon2id: hash: %w", err)
	}
	return p, nil
}

// parseArgon2Params parses "m=<m>,t=<t>,p=<p>", in this order as the
// reference encoder writes it, without the optional keyid and data.
func parseArgon2Params(s string) (*argon2Hash, error) {
	kv := strings.Split(s, ",")
	if len(kv) != 3 {
		return nil, fmt.Errorf("argon2id: parameters %q, want m=,t=,p=", s)
	}
	m, errM := phcUint(kv[0], "m=", maxArgon2Memory)
	t, errT := phcUint(kv[1], "t=", maxArgon2Time)
	p, errP := phcUint(kv[2], "p=", maxArgon2Threads)
	if err := errors.Join(errM, errT, errP); err != nil {
		return nil, fmt.Errorf("argon2id: %w", err)
	}
	// RFC 9106 §3.1: at least one pass, one lane and 8 KiB per lane.
	if t < 1 || p < 1 || m < 8*p {
		return nil, fmt.Errorf("argon2id: parameters %q below the RFC 9106 minimum", s)
	}
	return &argon2Hash{memory: m, time: t, threads: uint8(p)}, nil
}

// phcUint parses "<prefix><decimal>" with a canonical decimal at most max.
func phcUint(s, prefix string, max uint32) (uint32, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, fmt.Errorf("parameter %q, want %s", s, prefix)
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != digits {
		return 0, fmt.Errorf("parameter %q is not a decimal number", s)
	}
	if n > uint64(max) {
		return 0, fmt.Errorf("parameter %q above the limit %d", s, max)
	}
	return uint32(n), nil
}

// decodePHC decodes unpadded standard base64 (the PHC string format) of
// between min and max bytes.
func decodePHC(s string, min, max int) ([]byte, error) {
	if base64.RawStdEncoding.DecodedLen(len(s)) > max {
		return nil, fmt.Errorf("longer than %d bytes", max)
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	if len(b) < min {
		return nil, fmt.Errorf("%d bytes, want at least %d", len(b), min)
	}
	return b, nil
}

// isBcrypt accepts the bcrypt variants in use. $2$ and $2x$ are excluded:
// the first is obsolete, the second marks hashes from the buggy crypt_blowfish.
func isBcrypt(hash string) bool {
	for _, v := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(hash, v) {
			return true
		}
	}
	return false
}

// validateBcrypt checks the form of a bcrypt hash and bounds its cost. Like
// every bcrypt implementation, the check reads the first 72 bytes of a
// password only.
func validateBcrypt(hash string) error {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return fmt.Errorf("bcrypt: %w", err)
	}
	if cost > maxBcryptCost {
		return fmt.Errorf("bcrypt: cost %d above the limit %d", cost, maxBcryptCost)
	}
	return nil
}

// maxArgon2MemoryKiB is the largest argon2id m of hashes, and at least that
// of HashPassword's: the memory one password check may take, which sizes
// the check slots of AuthGuard.MemoryBudget. bcrypt needs a few KiB.
func maxArgon2MemoryKiB(hashes map[string]string) uint32 {
	m := uint32(argon2Memory)
	for _, h := range hashes {
		if p, err := parseArgon2id(h); err == nil {
			m = max(m, p.memory)
		}
	}
	return m
}
