package smtp

import (
	"crypto/rand"
	"crypto/tls"
	"time"
	"weak"
)

// ticketKeyRotation is how often the session ticket key changes. A ticket
// is accepted under the current key and the one before it, so it resumes
// a session for at most two rotations (48 h), not the 7 days of
// crypto/tls's own rotation (issue 18 item 10). Resumption skips a full
// handshake only: the ticket carries the session's secrets, so a stolen
// ticket key exposes the sessions it encrypted until it is dropped
// (RFC 8446 §8, RFC 5077 §5.5).
const ticketKeyRotation = 24 * time.Hour

// rotateTicketKeys gives cfg a fresh random ticket key now and every
// `every`, keeping the previous key to decrypt tickets issued before the
// last rotation. The goroutine holds cfg weakly and ends once cfg is no
// longer used; keys live in memory only, so a restart also rotates them.
func rotateTicketKeys(cfg *tls.Config, every time.Duration) {
	var keys [2][32]byte
	newKey(&keys[0])
	cfg.SetSessionTicketKeys([][32]byte{keys[0]})
	wp := weak.Make(cfg)
	go func() {
		defer func() { _ = recover() }() // a rotation must never take the process down
		t := time.NewTicker(every)
		defer t.Stop()
		for range t.C {
			c := wp.Value()
			if c == nil {
				return
			}
			keys[1] = keys[0]
			newKey(&keys[0])
			c.SetSessionTicketKeys([][32]byte{keys[0], keys[1]})
		}
	}()
}

// newKey fills k from crypto/rand (which never fails on supported systems
// from Go 1.24 on).
func newKey(k *[32]byte) { _, _ = rand.Read(k[:]) }
