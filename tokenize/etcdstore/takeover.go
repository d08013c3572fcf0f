package etcdstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// A node that dies leaves its outbox (outbox/<node>/) behind with the
// records it had not delivered yet. Once its lease has ended (nodes/<node>
// gone), a surviving node claims the outbox with one transaction that
// writes takeover/<node> under the claimer's own lease, only if neither
// key exists: two survivors cannot both claim it, and a dead claimer's
// claim ends with its lease, so a third node claims it again. The claimer
// lists the entries with its own (Outbox), the map delivers them to the
// claimer's trail and deletes them, and the claim is dropped once the
// outbox is empty. The dead node, restarted, waits for that before it
// registers (register), so an outbox has one reader at a time.

var _ tokenize.OutboxTakeover = (*Store)(nil)

// takeovers is the store's side of the outbox takeover.
type takeovers struct {
	mu sync.Mutex
	// foreign maps the name of each listed entry of a taken-over outbox
	// to its key, for DeleteOutbox: a ref names the entry, not its node
	// (the ref the dead node gave it, which its trail record keeps).
	foreign map[string]string
	subs    []chan int
	// claimed is how many entries each outbox this node claimed held
	// then, counted as delivered when it is released.
	claimed map[string]int
}

// TakenOver implements tokenize.OutboxTakeover.
func (s *Store) TakenOver(ctx context.Context) <-chan int {
	ch := make(chan int, 16)
	s.takeovers.mu.Lock()
	s.takeovers.subs = append(s.takeovers.subs, ch)
	s.takeovers.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.bg.Done():
		}
		s.takeovers.mu.Lock()
		defer s.takeovers.mu.Unlock()
		for i, c := range s.takeovers.subs {
			if c == ch {
				s.takeovers.subs = append(s.takeovers.subs[:i], s.takeovers.subs[i+1:]...)
				break
			}
		}
		close(ch)
	}()
	return ch
}

// notify tells the subscribers of n entries taken over. A subscriber that
// is behind misses the count, not the entries: the map's next delivery
// lists them anyway.
func (s *Store) notify(n int) {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	for _, ch := range s.takeovers.subs {
		select {
		case ch <- n:
		default:
		}
	}
}

// foreignKey returns the key of a listed entry of a taken-over outbox.
func (s *Store) foreignKey(name string) (string, bool) {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	key, ok := s.takeovers.foreign[name]
	return key, ok
}

func (s *Store) noteForeign(name, key string) {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	if s.takeovers.foreign == nil {
		s.takeovers.foreign = map[string]string{}
	}
	s.takeovers.foreign[name] = key
}

// forgetForeign drops the names of a released outbox's entries.
func (s *Store) forgetForeign(prefix string) {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	for name, key := range s.takeovers.foreign {
		if strings.HasPrefix(key, prefix) {
			delete(s.takeovers.foreign, name)
		}
	}
}

// takeoverInterval is how often a node looks for dead nodes' outboxes:
// a fraction of the lease TTL, so a takeover follows the lease's end
// closely, at a few cheap reads per pass.
func (s *Store) takeoverInterval() time.Duration {
	return min(max(s.opts.LeaseTTL/5, 200*time.Millisecond), time.Second)
}

// startTakeovers runs takeOver in the background until the store closes.
func (s *Store) startTakeovers() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			sleep(s.bg, s.takeoverInterval())
			if s.bg.Err() != nil {
				return
			}
			if err := s.takeOver(s.bg); err != nil && s.bg.Err() == nil {
				s.log.Warn("outbox takeover pass failed; retrying", "event", "outbox_takeover_failed", "err", err)
			}
		}
	}()
}

// takeOver claims the outboxes of dead nodes that nobody claimed, and
// gives up this node's claims on outboxes that are empty now.
func (s *Store) takeOver(ctx context.Context) error {
	owners, err := s.outboxOwners(ctx)
	if err != nil {
		return err
	}
	live, err := s.keyNames(ctx, s.keys.nodes)
	if err != nil {
		return err
	}
	claims, err := s.keyNames(ctx, s.keys.takeovers)
	if err != nil {
		return err
	}
	lease := s.lease()
	for _, id := range owners {
		if id == s.opts.NodeID || live[id] != 0 || claims[id] != 0 {
			continue
		}
		if err := s.claim(ctx, id, lease); err != nil {
			return err
		}
	}
	for id, held := range claims {
		if held == int64(lease) && !slices.Contains(owners, id) {
			if err := s.release(ctx, id, lease); err != nil {
				return err
			}
		}
	}
	return nil
}

// outboxOwners returns the nodes that have outbox entries, with one read
// per node: each read skips past the node it found.
func (s *Store) outboxOwners(ctx context.Context) ([]string, error) {
	var ids []string
	from, end := s.keys.outboxes, clientv3.GetPrefixRangeEnd(s.keys.outboxes)
	for {
		cctx, cancel := s.call(ctx)
		resp, err := s.cli.Get(cctx, from, clientv3.WithRange(end), clientv3.WithLimit(1), clientv3.WithKeysOnly())
		cancel()
		if err != nil {
			return nil, fail("list outboxes", err)
		}
		if len(resp.Kvs) == 0 {
			return ids, nil
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(string(resp.Kvs[0].Key), s.keys.outboxes), "/")
		ids = append(ids, id)
		from = clientv3.GetPrefixRangeEnd(s.keys.nodeOutbox(id))
	}
}

// keyNames returns the names under prefix with the lease each is held by.
// Not WithKeysOnly: etcd then leaves the lease out of the reply; the
// values are a few bytes.
func (s *Store) keyNames(ctx context.Context, prefix string) (map[string]int64, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fail("read "+strings.TrimPrefix(prefix, s.keys.base), err)
	}
	out := make(map[string]int64, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = kv.Lease
	}
	return out, nil
}

// claim takes a dead node's outbox over, if it is still dead and
// unclaimed when the transaction commits.
func (s *Store) claim(ctx context.Context, id string, lease clientv3.LeaseID) error {
	node, claim := s.keys.node(id), s.keys.takeover(id)
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(node), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(claim), "=", 0)).
		Then(clientv3.OpPut(claim, s.opts.NodeID, clientv3.WithLease(lease)),
			clientv3.OpGet(s.keys.nodeOutbox(id), clientv3.WithPrefix(), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return fail("claim an outbox", err)
	}
	if !resp.Succeeded {
		return nil // the node came back, or another node was first
	}
	n := int(resp.Responses[1].GetResponseRange().Count)
	s.log.Info("outbox of a dead node taken over", "event", "outbox_takeover", "dead_node", id, "entries", n)
	s.metrics.takeovers.Inc()
	s.noteClaimed(id, n)
	s.notify(n)
	return nil
}

// release gives up this node's claim on an outbox it emptied. No entry
// can appear in it meanwhile: only its node writes it, and that node does
// not register while the claim holds.
func (s *Store) release(ctx context.Context, id string, lease clientv3.LeaseID) error {
	claim := s.keys.takeover(id)
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.LeaseValue(claim), "=", lease)).
		Then(clientv3.OpDelete(claim)).Commit()
	if err != nil {
		return fail("release an outbox", err)
	}
	s.forgetForeign(s.keys.nodeOutbox(id))
	n := s.releasedClaim(id)
	s.metrics.takenOver.Add(float64(n))
	s.log.Info("outbox of a dead node delivered", "event", "outbox_takeover_done", "dead_node", id, "entries", n)
	return nil
}

// noteClaimed remembers how many entries a claimed outbox held: no entry
// is added to it while the claim holds (release), so all of them have
// reached this node's trail when it is released.
func (s *Store) noteClaimed(id string, n int) {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	if s.takeovers.claimed == nil {
		s.takeovers.claimed = map[string]int{}
	}
	s.takeovers.claimed[id] = n
}

// releasedClaim returns and forgets the entries of a released claim (0
// for a claim this run did not make: one held under a lease it lost).
func (s *Store) releasedClaim(id string) int {
	s.takeovers.mu.Lock()
	defer s.takeovers.mu.Unlock()
	n := s.takeovers.claimed[id]
	delete(s.takeovers.claimed, id)
	return n
}
