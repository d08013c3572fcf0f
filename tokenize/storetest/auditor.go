package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Auditor is a tokenize.Auditor that keeps what it is given.
type Auditor struct {
	mu         sync.Mutex
	recs       []tokenize.Change
	DeliverErr error // returned by Deliver while set
	// Hold, when set, makes Deliver wait until it is closed (then fail)
	// or its context ends: a trail that hangs.
	Hold chan struct{}
}

var _ tokenize.Auditor = (*Auditor)(nil)

// Actor implements tokenize.Auditor.
func (a *Auditor) Actor(context.Context) string { return "test" }

// Ready implements tokenize.Auditor.
func (a *Auditor) Ready() error { return nil }

// Deliver implements tokenize.Auditor.
func (a *Auditor) Deliver(ctx context.Context, recs []tokenize.Change) error {
	if a.Hold != nil {
		select {
		case <-a.Hold:
			return errors.New("trail hung")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.DeliverErr != nil {
		return a.DeliverErr
	}
	a.recs = append(a.recs, recs...)
	return nil
}

// Delivered implements tokenize.Auditor: the refs it holds.
func (a *Auditor) Delivered(_ context.Context, _ time.Time, refs []string) (map[string]bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]bool{}
	for _, r := range a.recs {
		out[r.Ref] = true
	}
	return out, nil
}

// Tokens returns the tokens of the delivered records of one event.
func (a *Auditor) Tokens(e tokenize.Event) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		if r.Event == e {
			out = append(out, r.Token)
		}
	}
	return out
}

// Records returns a copy of the delivered records, in delivery order.
func (a *Auditor) Records() []tokenize.Change {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.recs)
}
