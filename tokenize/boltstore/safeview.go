package boltstore

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// safeView runs fn in a bbolt read transaction and turns a panic inside it
// into an error wrapping tokenize.ErrStore.
//
// bbolt checks a page only when it reads it, by assertion: a damaged leaf
// of the tokens bucket, which OpenDB does not read, panics in the first
// look-up that reaches it. Unrecovered, that panic ends the SMTP command in
// go-smtp's own 421 and a stack trace in the log; as an tokenize.ErrStore the routes
// answer 451 4.3.0 and the reply boundary logs the cause once.
//
// The recover sits inside the closure, so View returns normally and rolls
// the read transaction back: a read transaction left open would hold
// bbolt's mmap lock and block every later remap and Close.
//
// The panic's text is bbolt's (page ids and flags); keys of the tokens
// bucket are tokens and its values are sealed, so it names no address.
func (db *Store) safeView(fn func(*bolt.Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) (err error) {
		// A page whose offsets point past the mapped file faults
		// instead of failing an assertion; for this goroutine, and only
		// while fn runs, the runtime turns that fault into a panic
		// recovered below rather than killing the process.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				err = corrupt(db.path, fmt.Errorf("damaged page read: %v", r))
			}
		}()
		return fn(tx)
	})
}
