package tokenize

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// reencryptBatch bounds one write transaction, so sessions creating
// tokens wait for at most one batch.
const reencryptBatch = 500

// reencryptAll re-seals records under the current record key version after
// a rotation. It runs in the background, resumes after a restart (the meta
// bucket records when it finished), and stops when ctx ends.
func (m *Map) reencryptAll(ctx context.Context) {
	if m.recordsAtLeast() >= m.recVer {
		return
	}
	m.log.Info("re-encrypting records under the new record key", "event", "reencrypt_start", "record_key_version", m.recVer)
	var after []byte
	total := 0
	for ctx.Err() == nil {
		next, n, err := m.reencryptBatch(after)
		if err != nil {
			m.log.Error("re-encryption stopped; it resumes at next start", "event", "reencrypt_error", "err", err)
			return
		}
		total += n
		if next == nil {
			break
		}
		after = next
	}
	if ctx.Err() != nil {
		return
	}
	err := m.db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyRecordsAtLeast, []byte(strconv.FormatUint(uint64(m.recVer), 10)))
	})
	if err != nil {
		m.log.Error("re-encryption finished but could not be recorded", "event", "reencrypt_error", "err", err)
		return
	}
	m.log.Info("re-encryption finished", "event", "reencrypt_done", "records", total, "record_key_version", m.recVer)
}

// reencryptBatch re-seals up to reencryptBatch records after key `after`
// and returns the last key visited (nil at the end).
func (m *Map) reencryptBatch(after []byte) ([]byte, int, error) {
	var last []byte
	n := 0
	err := m.db.bolt.Update(func(tx *bolt.Tx) error {
		toks := tx.Bucket(bucketTokens)
		c := toks.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && string(k) == string(after) {
				k, v = c.Next()
			}
		}
		type update struct{ k, v []byte }
		var updates []update
		for i := 0; k != nil && i < reencryptBatch; k, v = c.Next() {
			i++
			last = append([]byte(nil), k...)
			rec, err := decodeLive(v)
			if errors.Is(err, ErrUnknownToken) || (err == nil && rec.keyVersion == m.recVer) {
				continue
			}
			if err != nil {
				return fmt.Errorf("token %s: %w", k, err)
			}
			addr, name, err := m.open(rec, string(k))
			if err != nil {
				return fmt.Errorf("token %s: %w", k, err)
			}
			rec.seal(m.aeads[m.recVer], m.recVer, string(k), addr, name)
			updates = append(updates, update{last, rec.encode()})
		}
		if k == nil {
			last = nil
		}
		// Writing during cursor iteration is unsafe in bbolt; write after.
		for _, u := range updates {
			if err := toks.Put(u.k, u.v); err != nil {
				return err
			}
		}
		n = len(updates)
		return nil
	})
	return last, n, err
}

// recordsAtLeast is the record key version every record was sealed with
// at the last finished re-encryption (1 for a map never rotated).
func (m *Map) recordsAtLeast() uint32 {
	v := uint64(1)
	m.db.bolt.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketMeta).Get(keyRecordsAtLeast); raw != nil {
			v, _ = strconv.ParseUint(string(raw), 10, 32)
		}
		return nil
	})
	return uint32(v)
}

// ReencryptPending reports whether records sealed under an older record
// key may remain.
func (m *Map) ReencryptPending() bool { return m.recordsAtLeast() < m.recVer }
