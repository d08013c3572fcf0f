package tokenize

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrRecordAuth reports a record whose ciphertext fails authentication:
// it was tampered with or belongs to another token. Never return garbage.
var ErrRecordAuth = errors.New("token record fails authentication")

// ErrCorruptRecord reports a record that cannot even be decoded.
var ErrCorruptRecord = errors.New("token record is corrupt")

// recordFormat is the first byte of every record value.
const recordFormat = 1

// record is a token's entry in the map. Address and display name exist only
// as ciphertext; mac and nameTag are keyed hashes.
type record struct {
	keyVersion uint32 // record (AEAD) key version of sealed
	created    int64  // unix seconds
	lastSeen   int64  // unix seconds; not authenticated, it changes in place
	mac        MAC    // the address's keyed hash: index key, collision check
	nameTag    [8]byte
	sealed     []byte // nonce ‖ AES-256-GCM(address ‖ display name)
}

const recordHeader = 1 + 4 + 8 + 8 + len(MAC{}) + 8

func (r *record) encode() []byte {
	b := make([]byte, recordHeader, recordHeader+len(r.sealed))
	b[0] = recordFormat
	binary.BigEndian.PutUint32(b[1:], r.keyVersion)
	binary.BigEndian.PutUint64(b[5:], uint64(r.created))
	binary.BigEndian.PutUint64(b[13:], uint64(r.lastSeen))
	copy(b[21:], r.mac[:])
	copy(b[21+len(r.mac):], r.nameTag[:])
	return append(b, r.sealed...)
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) < recordHeader || b[0] != recordFormat {
		return nil, ErrCorruptRecord
	}
	r := &record{
		keyVersion: binary.BigEndian.Uint32(b[1:]),
		created:    int64(binary.BigEndian.Uint64(b[5:])),
		lastSeen:   int64(binary.BigEndian.Uint64(b[13:])),
	}
	copy(r.mac[:], b[21:])
	copy(r.nameTag[:], b[21+len(r.mac):])
	r.sealed = append([]byte(nil), b[recordHeader:]...)
	return r, nil
}

// additionalData binds the ciphertext to its token, to the address hash
// and to the creation time: a record copied under another token, or a
// swapped hash, fails authentication.
func (r *record) additionalData(token string) []byte {
	ad := make([]byte, 0, 32+len(token)+len(r.mac)+8)
	ad = append(ad, "tokenproxy-record/1\x00"...)
	ad = append(ad, token...)
	ad = append(ad, 0)
	ad = append(ad, r.mac[:]...)
	return binary.BigEndian.AppendUint64(ad, uint64(r.created))
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal encrypts address and display name with a random 96-bit nonce. GCM's
// nonce limit (2^32 messages per key) is far beyond a token map's size, and
// the record key rotates freely.
func (r *record) seal(aead cipher.AEAD, version uint32, token, address, name string) {
	plain := binary.AppendUvarint(nil, uint64(len(address)))
	plain = append(plain, address...)
	plain = append(plain, name...)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	r.keyVersion = version
	r.sealed = aead.Seal(nonce, nonce, plain, r.additionalData(token))
}

func (r *record) open(aead cipher.AEAD, token string) (address, name string, err error) {
	ns := aead.NonceSize()
	if len(r.sealed) < ns+aead.Overhead() {
		return "", "", ErrCorruptRecord
	}
	plain, err := aead.Open(nil, r.sealed[:ns], r.sealed[ns:], r.additionalData(token))
	if err != nil {
		return "", "", ErrRecordAuth
	}
	n, k := binary.Uvarint(plain)
	if k <= 0 || uint64(len(plain)-k) < n {
		return "", "", fmt.Errorf("%w: bad plaintext layout", ErrRecordAuth)
	}
	return string(plain[k : k+int(n)]), string(plain[k+int(n):]), nil
}

// tombstoneFormat marks an erased token: the erasure time and, only when
// erased subjects are suppressed, the address's keyed hash.
const tombstoneFormat = 0

func tombstone(at time.Time, suppress *MAC) []byte {
	b := binary.BigEndian.AppendUint64([]byte{tombstoneFormat}, uint64(at.Unix()))
	if suppress != nil {
		b = append(b, suppress[:]...)
	}
	return b
}

// suppressed reports whether b is a tombstone that keeps mac: the address
// was erased under SuppressErased.
func suppressed(b []byte, mac MAC) bool {
	return len(b) == 9+len(mac) && b[0] == tombstoneFormat && [len(MAC{})]byte(b[9:]) == mac
}

// decodeLive decodes a record; a missing or erased one is ErrUnknownToken.
func decodeLive(b []byte) (*record, error) {
	if b == nil {
		return nil, ErrUnknownToken
	}
	if len(b) == 0 {
		return nil, ErrCorruptRecord
	}
	if b[0] == tombstoneFormat {
		return nil, fmt.Errorf("%w: erased", ErrUnknownToken)
	}
	return decodeRecord(b)
}
