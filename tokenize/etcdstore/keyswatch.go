package etcdstore

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

var _ tokenize.KeysWatcher = (*Store)(nil)

// WatchKeys implements tokenize.KeysWatcher: a value when the watch opens
// (or reopens: changes may have been missed while it was broken) and after
// each change under keys/. The map then re-reads the wrapped keys, so the
// values carry nothing and coalesce. The channel closes when ctx ends or
// the store closes.
func (s *Store) WatchKeys(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { // the store's Close ends the watch too
			select {
			case <-s.bg.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		for ctx.Err() == nil {
			if err := s.watchKeysOnce(ctx, out); err != nil && ctx.Err() == nil {
				s.log.Warn("etcd watch of the data keys broke; reopening", "event", "etcd_keys_watch_restart", "err", err)
			}
			sleep(ctx, watchRetry)
		}
	}()
	return out
}

// watchKeysOnce runs one watch of the wrapped keys. It signals once the
// watch is open, so a change committed before is not lost between the
// caller's load of the keys and the watch.
func (s *Store) watchKeysOnce(ctx context.Context, out chan<- struct{}) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := s.cli.Watch(wctx, s.keys.wrapped, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Created || len(resp.Events) > 0 {
			signal(out)
		}
	}
	return ctx.Err()
}

// signal sends without waiting: a value already pending says the same.
func signal(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}
