package tokenize

import (
	"testing"

	"github.com/tokenproxy/tokenproxy/address"
)

// TestKnownCacheDropsOneToken: a change to one token drops its address's
// entry only; a re-put under a new token forgets the old token's index.
func TestKnownCacheDropsOneToken(t *testing.T) {
	c := newKnownCache(10)
	jane, joe := address.Address{Local: "jane", Domain: "example.com"}, address.Address{Local: "joe", Domain: "example.com"}
	c.put(jane, knownEntry{local: "t1-jane"})
	c.put(joe, knownEntry{local: "t1-joe"})
	c.drop("t1-jane")
	if _, ok := c.get(jane); ok {
		t.Error("the dropped token's address is still cached")
	}
	if e, ok := c.get(joe); !ok || e.local != "t1-joe" {
		t.Errorf("another address's entry went too: %+v %v", e, ok)
	}
	c.put(joe, knownEntry{local: "t1-joe-new"})
	c.drop("t1-joe") // the old token: nothing to drop
	if e, ok := c.get(joe); !ok || e.local != "t1-joe-new" {
		t.Errorf("dropping a replaced token dropped the new entry: %+v %v", e, ok)
	}
	if len(c.byLocal) != 1 {
		t.Errorf("index holds %d tokens, want 1", len(c.byLocal))
	}
}
