package tokenize

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// metaRecordsAtLeast names the meta value that says which record key
// version every record had at the last finished re-encryption.
const metaRecordsAtLeast = "records_min_key_version"

// reencryptBatch bounds the records one re-encryption transaction visits,
// so sessions creating tokens wait for at most one batch.
const reencryptBatch = 500

// reencryptLed re-encrypts after the start and again whenever UpdateKeys
// brings a newer record key, until ctx ends.
func (m *Map) reencryptLed(ctx context.Context) {
	for {
		m.reencryptOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.rekeyed:
		}
	}
}

// reencryptOnce runs reencryptAll on one node of a cluster at a time
// (Elector): two nodes would rewrite every record twice, and their
// batches would conflict. A node whose leadership is lost midway
// campaigns again; the new leader resumes from the start of the map,
// skipping the records already re-sealed. Every node campaigns while it
// knows of records under an older key than its newest, so a leader that
// had not yet loaded the newest key is followed by one that has.
func (m *Map) reencryptOnce(ctx context.Context) {
	for m.ReencryptPending() && ctx.Err() == nil {
		lctx, cancel := context.WithCancel(ctx)
		led, err := m.Lead(lctx, "reencrypt")
		if err != nil {
			cancel()
			return // ctx ended
		}
		m.reencryptAll(led)
		lost := led.Err() != nil && ctx.Err() == nil
		cancel() // gives the leadership up
		if !lost {
			return // finished, or failed (resumes at the next start or key)
		}
	}
}

// reencryptAll re-seals records under the current record key version after
// a rotation. It runs in the background, resumes after a restart (the meta
// bucket records when it finished), and stops when ctx ends.
//
// It works with the keys of its start: a record key added meanwhile wakes
// reencryptLed for another pass.
func (m *Map) reencryptAll(ctx context.Context) {
	ks := m.keys()
	if m.recordsAtLeast() >= ks.recVer {
		return
	}
	m.log.Info("re-encrypting records under the new record key", "event", "reencrypt_start", "record_key_version", ks.recVer)
	after := ""
	total := 0
	for ctx.Err() == nil {
		next, n, err := m.reencryptBatch(ctx, ks, after)
		if err != nil {
			m.log.Error("re-encryption stopped; it resumes at the next start or record key", "event", "reencrypt_error", "err", err)
			return
		}
		total += n
		if next == "" {
			break
		}
		after = next
	}
	if ctx.Err() != nil {
		return
	}
	err := m.store.Update(ctx, func(tx Tx) error {
		return tx.PutMeta(metaRecordsAtLeast, []byte(strconv.FormatUint(uint64(ks.recVer), 10)))
	})
	if err != nil {
		m.log.Error("re-encryption finished but could not be recorded", "event", "reencrypt_error", "err", err)
		return
	}
	m.log.Info("re-encryption finished", "event", "reencrypt_done", "records", total, "record_key_version", ks.recVer)
}

// reencryptBatch re-seals up to one batch of records after the key
// after under ks's newest record key and returns the last key visited
// ("" at the end).
func (m *Map) reencryptBatch(ctx context.Context, ks *keyset, after string) (string, int, error) {
	type update struct {
		local string
		value []byte
	}
	limit := m.store.MaxBatch()
	var updates []update
	var last string
	err := m.store.Update(ctx, func(tx Tx) error {
		updates, last = updates[:0], ""
		visited := 0
		err := tx.Tokens(after, func(k string, v []byte) (bool, error) {
			visited++
			last = k
			rec, err := decodeLive(v)
			// A record under a newer key than ks's (another node loaded
			// it first) is left alone: re-sealing it would downgrade it.
			if errors.Is(err, ErrUnknownToken) || (err == nil && rec.keyVersion >= ks.recVer) {
				return visited < reencryptBatch, nil
			}
			if err != nil {
				return false, fmt.Errorf("token %s: %w", k, err)
			}
			addr, name, err := m.open(rec, k)
			if err != nil {
				return false, fmt.Errorf("token %s: %w", k, err)
			}
			rec.seal(ks.aeads[ks.recVer], ks.recVer, k, addr, name)
			updates = append(updates, update{k, rec.encode()})
			return visited < reencryptBatch && len(updates) < limit, nil
		})
		if err != nil {
			return err
		}
		if visited < reencryptBatch && len(updates) < limit {
			last = "" // the scan reached the end
		}
		// Writing while a store iterates is unsafe (bbolt); write after.
		for _, u := range updates {
			if err := tx.PutToken(u.local, u.value); err != nil {
				return err
			}
		}
		return nil
	})
	return last, len(updates), err
}

// recordsAtLeast is the record key version every record was sealed with
// at the last finished re-encryption (1 for a map never rotated).
func (m *Map) recordsAtLeast() uint32 {
	v := uint64(1)
	m.store.View(context.Background(), func(tx ReadTx) error {
		raw, err := tx.Meta(metaRecordsAtLeast)
		if raw != nil {
			v, _ = strconv.ParseUint(string(raw), 10, 32)
		}
		return err
	})
	return uint32(v)
}

// ReencryptPending reports whether records sealed under an older record
// key may remain.
func (m *Map) ReencryptPending() bool { return m.recordsAtLeast() < m.keys().recVer }
