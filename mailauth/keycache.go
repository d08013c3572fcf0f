package mailauth

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// The key cache's bounds. net.Resolver does not give a record's TTL, so
// these are ours: a key record (RFC 6376 §3.6.2.2) is looked up again
// after keyCacheTTL, which bounds how long a revoked or rotated key still
// verifies; a name that does not exist is asked again after
// keyCacheNegativeTTL (RFC 2308 negative caching, kept brief so that a
// newly published selector is seen soon). Temporary failures are never
// cached: the next message asks again. keyCacheSize bounds the memory: a
// record is at most a few KiB, and mail comes from far fewer selectors.
const (
	keyCacheSize        = 1024
	keyCacheTTL         = 15 * time.Minute
	keyCacheNegativeTTL = time.Minute
)

// keyCache holds the answers to DKIM key queries (selector._domainkey.d)
// across messages, for DKIM-Signature and both ARC signatures alike: a
// sender's mail, or a gateway's ARC seals, carry the same few selectors
// message after message. It is safe for concurrent use; the least
// recently used name goes first when it is full (golang-lru), an expired
// one when it is asked for.
type keyCache struct {
	entries *lru.Cache[string, keyEntry]
	now     func() time.Time
}

// keyEntry is one answer: the records, or notFound (NXDOMAIN or no TXT
// record), until expires.
type keyEntry struct {
	txts     []string
	notFound bool
	expires  time.Time
}

func newKeyCache(size int, now func() time.Time) *keyCache {
	entries, err := lru.New[string, keyEntry](size)
	if err != nil {
		panic(err) // only for a size below 1: a constant here
	}
	return &keyCache{entries: entries, now: now}
}

// lookupKey returns the TXT records of a key name, from the cache while
// fresh, else from DNS through r.
func (r *Resolver) lookupKey(ctx context.Context, name string) ([]string, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	c := r.keys
	if e, ok := c.entries.Get(name); ok {
		if c.now().Before(e.expires) {
			if e.notFound {
				return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
			}
			return e.txts, nil
		}
		c.entries.Remove(name)
	}
	txts, err := r.LookupTXT(ctx, name)
	var de *net.DNSError
	switch {
	case err == nil:
		c.entries.Add(name, keyEntry{txts: txts, expires: c.now().Add(keyCacheTTL)})
	case errors.As(err, &de) && de.IsNotFound:
		c.entries.Add(name, keyEntry{notFound: true, expires: c.now().Add(keyCacheNegativeTTL)})
	}
	return txts, err
}

// keyTXTFunc is lookupKey as go-msgauth's dkim.VerifyOptions.LookupTXT.
func (r *Resolver) keyTXTFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return r.lookupKey(ctx, name) }
}
