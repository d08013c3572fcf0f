package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// headStore is where a cluster node publishes its trail's signed head
// (etcdstore.Store); a bbolt node has nobody to publish to.
type headStore interface {
	PutAuditHead(ctx context.Context, value []byte) error
	OwnAuditHead(ctx context.Context) ([]byte, error)
}

// Publishing runs apart from the trail's writer, which calls the hook
// holding up Appends: the hook only notes the newest head. A failed
// publication (etcd away) is retried every headRetry and at close; a
// newer checkpoint replaces an unpublished one, as it vouches for more.
const (
	headRetry          = 5 * time.Second
	headPublishTimeout = 5 * time.Second
)

type headPublisher struct {
	store headStore
	log   *slog.Logger

	mu        sync.Mutex
	pending   *audit.SignedHead
	published uint64 // seq of the head in the store

	wake chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

// newHeadPublisher starts publishing. It reads the head published before,
// so that a trail restored behind it is reported, never rolled back: the
// published head is the evidence of how long the trail was.
func newHeadPublisher(ctx context.Context, store headStore, log *slog.Logger) *headPublisher {
	p := &headPublisher{store: store, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if v, err := store.OwnAuditHead(ctx); err != nil {
		log.Warn("audit head: cannot read the published head", "event", "audit_head_unread", "err", err)
	} else if v != nil {
		var h audit.SignedHead
		if err := json.Unmarshal(v, &h); err == nil {
			p.published = h.Seq
		}
	}
	bg, stop := context.WithCancel(context.Background())
	p.stop = stop
	go p.run(bg)
	return p
}

// note is the trail's OnCheckpoint hook: it must not block.
func (p *headPublisher) note(h audit.SignedHead) {
	p.mu.Lock()
	p.pending = &h
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// hook returns note, or nil without a publisher.
func (p *headPublisher) hook() func(audit.SignedHead) {
	if p == nil {
		return nil
	}
	return p.note
}

func (p *headPublisher) run(ctx context.Context) {
	defer close(p.done)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("audit head publisher panicked", "event", "audit_head_panic", "panic", fmt.Sprint(r))
		}
	}()
	t := time.NewTicker(headRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
		p.publish(ctx)
	}
}

// publish stores the pending head; on failure it stays pending, unless a
// newer one arrived meanwhile.
func (p *headPublisher) publish(ctx context.Context) {
	p.mu.Lock()
	h := p.pending
	p.pending = nil
	published := p.published
	p.mu.Unlock()
	if h == nil {
		return
	}
	if h.Seq < published {
		p.log.Error("audit head: the trail is behind the head it published before (restored or cut?); not rolling it back",
			"event", "audit_head_behind", "seq", h.Seq, "published_seq", published)
		return
	}
	v, err := json.Marshal(h)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, headPublishTimeout)
		err = p.store.PutAuditHead(cctx, v)
		cancel()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.pending == nil {
			p.pending = h
		}
		p.log.Warn("audit head not published; retrying", "event", "audit_head_unpublished", "seq", h.Seq, "err", err)
		return
	}
	p.published = h.Seq
}

// close publishes the last head (Close's checkpoint) and stops. Call it
// after the trail is closed and before the store is.
func (p *headPublisher) close() {
	if p == nil {
		return
	}
	p.stop()
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), headPublishTimeout)
	defer cancel()
	p.publish(ctx)
}
