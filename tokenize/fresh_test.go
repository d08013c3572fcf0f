package tokenize_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/storetest"
)

// staleStore is a shared store whose freshness and reachability the test
// sets: down makes every View and Update fail as a lost quorum would.
type staleStore struct {
	*storetest.Mem
	mu    sync.Mutex
	stale error
	down  bool
}

func (s *staleStore) Fresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

func (s *staleStore) set(stale error, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stale, s.down = stale, down
}

var (
	errNoQuorum = errors.New("no quorum")
	errDown     = errors.New("store down")
)

func (s *staleStore) View(ctx context.Context, fn func(tokenize.ReadTx) error) error {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return errors.Join(tokenize.ErrStore, errDown)
	}
	return s.Mem.View(ctx, fn)
}

func staleSince(d time.Duration) error {
	return &tokenize.StaleError{Since: time.Now().Add(-d), Cause: errNoQuorum}
}

// TestFreshnessGatesCaches: while the store is fresh the known-address
// cache answers; when it is not, known senders are answered from it for
// the grace only, then looked up in the store (ErrStore while the store
// is down); Resolve is refused at once; all resume when fresh again.
func TestFreshnessGatesCaches(t *testing.T) {
	ctx := context.Background()
	s := &staleStore{Mem: storetest.NewMem()}
	m, err := tokenize.NewMap(s, testKeyring(1), tokenize.Options{Format: testFormat, Tenant: "test", StaleGrace: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	known, err := m.Tokenize(ctx, "known@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Tokenize(ctx, "known@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if hits, misses := m.KnownCacheStats(); hits != 1 || misses != 1 {
		t.Fatalf("cache stats after a creation and a repeat = %d hits, %d misses; want 1, 1", hits, misses)
	}

	tests := []struct {
		name            string
		stale           error
		knownOK, newOK  bool
		resolveOK, down bool
	}{
		{"fresh", nil, true, true, true, false},
		{"stale within the grace, store down", staleSince(time.Second), true, false, false, true},
		{"stale past the grace, store down", staleSince(time.Minute), false, false, false, true},
		{"stale past the grace, store readable", staleSince(time.Minute), true, true, false, false},
		{"stale without a time: no grace", errors.Join(tokenize.ErrStore, errNoQuorum), false, false, false, true},
		{"fresh again", nil, true, true, true, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.set(tc.stale, tc.down)
			iss, err := m.Tokenize(ctx, "known@example.com", "")
			if ok := err == nil && iss.Address == known.Address; ok != tc.knownOK {
				t.Errorf("known sender = %+v, %v; want served %v", iss, err, tc.knownOK)
			}
			if !tc.knownOK && !errors.Is(err, tokenize.ErrStore) {
				t.Errorf("known sender refused with %v; want ErrStore", err)
			}
			_, err = m.Tokenize(ctx, "new-"+string(rune('a'+i))+"@example.com", "")
			if (err == nil) != tc.newOK || (err != nil && !errors.Is(err, tokenize.ErrStore)) {
				t.Errorf("new sender: %v; want served %v, else ErrStore", err, tc.newOK)
			}
			_, err = m.Resolve(ctx, known.Address)
			if (err == nil) != tc.resolveOK || (err != nil && !errors.Is(err, tokenize.ErrStore)) {
				t.Errorf("Resolve: %v; want served %v, else ErrStore", err, tc.resolveOK)
			}
			if !tc.resolveOK && errors.Is(err, errDown) {
				t.Errorf("a stale Resolve read the store: it must be refused at once")
			}
			if got := m.Fresh(); (got == nil) != (tc.stale == nil) {
				t.Errorf("Map.Fresh() = %v with the store's %v", got, tc.stale)
			}
		})
	}
}
