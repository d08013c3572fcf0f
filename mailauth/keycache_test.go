package mailauth

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the key cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestKeyCacheAcrossMessages: the key records of a DKIM signature and of
// an ARC chain are asked once for several messages verified with one
// Resolver, again once keyCacheTTL has passed; a selector that does not
// exist is asked again after keyCacheNegativeTTL (and its answer then
// seen), a temporary failure on every message.
func TestKeyCacheAcrossMessages(t *testing.T) {
	z, key := arcZone(t)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := NewResolver(z.Addr, 2*time.Second)
	r.keys = newKeyCache(keyCacheSize, clock.now)
	in := VerifyInput{ClientIP: net.ParseIP("192.0.2.1"), Helo: "mx.fwd.example", MailFrom: "jane@customer.example",
		TrustedARCSealers: []string{"fwd.example"}}
	msg := arcSealed(t, key, "fwd.example", nil, forwarderIn, tagSubject(customerSigned(t, key)))
	run := func() *Verdicts {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := Verify(ctx, r, in, bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const dkimName, arcName = "arc._domainkey.customer.example", "arc._domainkey.fwd.example"
	for i := range 3 {
		if v := run(); v.ARC.Result != ResultPass || len(v.DKIM) != 1 || v.DKIM[0].Result != ResultFail || v.DMARC.ARCOverride != "fwd.example" {
			t.Fatalf("message %d: arc %s, dkim %+v, override %q", i, v.ARC.Result, v.DKIM, v.DMARC.ARCOverride)
		}
	}
	if d, a := z.Queries(dkimName), z.Queries(arcName); d != 1 || a != 1 {
		t.Fatalf("three messages asked the DKIM key %d times and the ARC key %d times, want once each", d, a)
	}
	clock.add(keyCacheTTL)
	run()
	if d, a := z.Queries(dkimName), z.Queries(arcName); d != 2 || a != 2 {
		t.Fatalf("after the TTL: DKIM key asked %d times, ARC key %d, want twice each", d, a)
	}

	// A selector not published yet: cached briefly.
	const newName = "new._domainkey.customer.example"
	ctx := context.Background()
	for range 2 {
		if _, err := r.lookupKey(ctx, newName); !isNotFound(err) {
			t.Fatalf("unpublished selector: %v, want not found", err)
		}
	}
	if n := z.Queries(newName); n != 1 {
		t.Fatalf("unpublished selector asked %d times, want once", n)
	}
	z.TXT(newName, "v=DKIM1; k=rsa; p=AAAA")
	if _, err := r.lookupKey(ctx, newName); !isNotFound(err) {
		t.Fatalf("within the negative TTL: %v, want the cached not found", err)
	}
	clock.add(keyCacheNegativeTTL)
	if txts, err := r.lookupKey(ctx, newName); err != nil || len(txts) != 1 {
		t.Fatalf("after the negative TTL: %q, %v, want the new record", txts, err)
	}

	// A temporary failure is not cached.
	const failing = "broken._domainkey.customer.example"
	z.ServFail(failing)
	for range 2 {
		if _, err := r.lookupKey(ctx, failing); err == nil || isNotFound(err) {
			t.Fatalf("SERVFAIL: %v, want a temporary error", err)
		}
	}
	if n := z.Queries(failing); n < 2 {
		t.Fatalf("SERVFAIL asked %d times: a temporary failure was cached", n)
	}
}

// TestKeyCacheSizeBound: the cache holds at most its size, dropping the
// least recently used name.
func TestKeyCacheSizeBound(t *testing.T) {
	z, _ := arcZone(t)
	r := NewResolver(z.Addr, 2*time.Second)
	r.keys = newKeyCache(2, time.Now)
	ctx := context.Background()
	names := []string{"arc._domainkey.customer.example", "arc._domainkey.fwd.example", "arc._domainkey.list.example"}
	for _, n := range names {
		if _, err := r.lookupKey(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.keys.entries.Len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if _, err := r.lookupKey(ctx, names[0]); err != nil {
		t.Fatal(err)
	}
	if q := z.Queries(names[0]); q != 2 {
		t.Fatalf("the least recently used name was asked %d times, want 2 (evicted, asked again)", q)
	}
	if _, err := r.lookupKey(ctx, names[2]); err != nil || z.Queries(names[2]) != 1 {
		t.Fatalf("the most recent name was asked again: %v, %d queries", err, z.Queries(names[2]))
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
