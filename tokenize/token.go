package tokenize

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenproxy/tokenproxy/address"
)

// ErrUnknownToken is returned for a token that is malformed, belongs to
// another relay domain, was never issued, or was erased.
var ErrUnknownToken = errors.New("unknown token")

// DefaultTokenLength is 16 base32 characters: 80 bits of the HMAC.
const DefaultTokenLength = 16

// maxTokenLength is the whole HMAC-SHA256 in base32 (256/5, rounded up).
const maxTokenLength = 52

// b32 is lower-case base32 without padding: CRMs and mail systems re-case
// addresses, and lower case is the form we emit and store.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Format says how tokens are written: prefix, key version, a dash, and the
// truncated HMAC, at the relay domain: "t1-k3jd9a2m4n5p6q7r@relay.example".
type Format struct {
	Prefix string // lower-case letters only, so the version that follows parses
	Domain string // relay domain, lower-case ASCII
	Length int    // base32 characters of the HMAC; 16 = 80 bits
}

// Validate checks a format. minLength is 16 in configuration; tests force
// shorter tokens to provoke collisions.
func (f Format) Validate(minLength int) error {
	if f.Prefix == "" || len(f.Prefix) > 16 {
		return fmt.Errorf("token prefix must be 1 to 16 letters")
	}
	for _, c := range f.Prefix {
		if c < 'a' || c > 'z' {
			return fmt.Errorf("token prefix must be lower-case letters a-z only")
		}
	}
	if f.Length < minLength || f.Length > maxTokenLength {
		return fmt.Errorf("token length must be %d to %d base32 characters", minLength, maxTokenLength)
	}
	if d, err := address.NormalizeDomain(f.Domain); err != nil || d != f.Domain {
		return fmt.Errorf("relay domain must be a lower-case ASCII host name")
	}
	return nil
}

// MAC is the keyed hash of a normalized address under one token key
// version: the token is its base32 prefix, and the map's index uses it in
// place of the address.
type MAC [sha256.Size]byte

// deriveMAC computes HMAC-SHA256(key, tenant ‖ 0 ‖ address). The zero byte
// keeps tenant and address apart ("ab"+"c" differs from "a"+"bc").
func deriveMAC(key []byte, tenant string, a address.Address) MAC {
	return newHMACPool(key).derive(tenant, a)
}

// hmacPool reuses keyed HMAC states: hmac.New hashes the key into fresh
// inner and outer states, which is most of the cost for a short address.
// Each state carries a buffer, so the message is written in one piece
// without a conversion per string.
type hmacPool struct{ p sync.Pool }

type hmacState struct {
	h   hash.Hash
	buf []byte
}

func newHMACPool(key []byte) *hmacPool {
	k := bytes.Clone(key)
	return &hmacPool{p: sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, k)} }}}
}

// sum computes the HMAC of the concatenated parts into out.
func (hp *hmacPool) sum(out []byte, parts ...string) {
	st := hp.p.Get().(*hmacState)
	st.buf = st.buf[:0]
	for _, p := range parts {
		st.buf = append(st.buf, p...)
	}
	st.h.Reset()
	st.h.Write(st.buf)
	st.h.Sum(out[:0])
	hp.p.Put(st)
}

func (hp *hmacPool) derive(tenant string, a address.Address) MAC {
	var m MAC
	hp.sum(m[:], tenant, "\x00", a.String())
	return m
}

// nameTag is a short keyed hash of a display name, so Tokenize notices a
// changed name without decrypting the record.
func (hp *hmacPool) nameTag(name string) [8]byte {
	var t [8]byte
	if name == "" {
		return t
	}
	var full [sha256.Size]byte
	hp.sum(full[:], "display-name\x00", name)
	copy(t[:], full[:])
	return t
}

// Local returns the token's local part at a given length of the HMAC.
func (f Format) Local(version uint32, m MAC, length int) string {
	var enc [maxTokenLength]byte
	b32.Encode(enc[:], m[:])
	var buf [16 + 10 + 1 + maxTokenLength]byte
	b := append(buf[:0], f.Prefix...)
	b = strconv.AppendUint(b, uint64(version), 10)
	b = append(b, '-')
	return string(append(b, enc[:length]...))
}

// Address returns a token local part as a full address at the relay domain.
func (f Format) Address(local string) string { return local + "@" + f.Domain }

// Token is a parsed token.
type Token struct {
	Local   string // canonical (lower-case) local part: the map's key
	Version uint32 // token key version
}

// Parse reads a token address or bare local part, case-insensitively.
// Anything that is not a well-formed token of this relay domain is
// ErrUnknownToken.
func (f Format) Parse(s string) (Token, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		d, err := address.NormalizeDomain(s[at+1:])
		if err != nil || d != f.Domain {
			return Token{}, fmt.Errorf("%w: not at the relay domain", ErrUnknownToken)
		}
		s = s[:at]
	}
	rest, ok := strings.CutPrefix(s, f.Prefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: wrong prefix", ErrUnknownToken)
	}
	ver, hash, ok := strings.Cut(rest, "-")
	v, err := strconv.ParseUint(ver, 10, 32)
	if !ok || err != nil || v == 0 || ver[0] == '0' {
		return Token{}, fmt.Errorf("%w: malformed key version", ErrUnknownToken)
	}
	if len(hash) < f.Length || len(hash) > maxTokenLength || strings.Trim(hash, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return Token{}, fmt.Errorf("%w: malformed hash", ErrUnknownToken)
	}
	return Token{Local: s, Version: uint32(v)}, nil
}
