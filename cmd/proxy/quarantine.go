package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/quarantine"
	"github.com/tokenproxy/tokenproxy/rewrite"
)

// quarantine opens <data_dir>/quarantine, sealed with the engine's
// record key.
func (e *engine) quarantine(cfg *policy.Config) (*quarantine.Store, error) {
	return quarantine.Open(filepath.Join(cfg.DataDir, "quarantine"), e.keys)
}

// keepStripped stores the originals of a message's stripped attachments;
// the first failure stops (and refuses the message).
func keepStripped(q *quarantine.Store) func(ctx context.Context, parts []rewrite.Stripped) error {
	return func(ctx context.Context, parts []rewrite.Stripped) error {
		for _, p := range parts {
			it := quarantine.Item{Ref: p.Ref, Kind: p.Kind, Name: p.Name, Size: len(p.Content)}
			if err := q.Put(ctx, it, p.Content); err != nil {
				return err
			}
		}
		return nil
	}
}

// dropStripped removes the originals of a message the downstream refused
// after they were kept; every reference is tried.
func dropStripped(q *quarantine.Store) func(ctx context.Context, refs []string) error {
	return func(ctx context.Context, refs []string) error {
		var errs []error
		for _, ref := range refs {
			if err := q.Delete(ctx, ref); err != nil && !errors.Is(err, quarantine.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// quarantineSweepEvery is how often the retention sweep runs.
const quarantineSweepEvery = time.Hour

// startQuarantineSweep deletes the originals older than
// rewrite.attachments.quarantine_retention, at start and hourly; stop
// ends it.
func startQuarantineSweep(cfg *policy.Config, e *engine, log *slog.Logger) (stop func(), err error) {
	q, err := e.quarantine(cfg)
	if err != nil {
		return nil, err
	}
	retention := cfg.Rewrite.Attachments.QuarantineRetention
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sweep := func() {
		gone, err := q.Sweep(ctx, time.Now().Add(-retention))
		if err != nil {
			log.Error("quarantine sweep failed", "event", "quarantine_sweep", "err", err)
		}
		if len(gone) > 0 {
			log.Info("quarantined attachments past retention deleted", "event", "quarantine_sweep", "refs", gone)
		}
	}
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				log.Error("quarantine sweep panicked", "event", "panic", "panic", r)
			}
		}()
		t := time.NewTicker(quarantineSweepEvery)
		defer t.Stop()
		for sweep(); ; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sweep()
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
