package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
)

// SignedHead is a trail's last checkpoint, as its node publishes it where
// a verifier finds it (the cluster's store, under the node's id). It is
// the trail's promise of its own length: a verifier handed the node's
// trail checks that it reaches Seq with Hash, so a trail withheld or cut
// back (checkpoints and head file rewritten with it) is still found,
// unless the published head was rolled back too. The signature makes a
// published head that no trail ever had detectable.
type SignedHead struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"` // the checkpoint record's own hash
	Prev string    `json:"prev"` // the hash before it: the signature covers Seq and Prev
	Key  string    `json:"key"`
	Sig  string    `json:"sig"`
	Time time.Time `json:"time"`
}

// signedHeadOf is the head a checkpoint record makes.
func signedHeadOf(rec Record) SignedHead {
	return SignedHead{Seq: rec.Seq, Hash: rec.Hash, Prev: rec.Prev, Key: rec.Key, Sig: rec.Sig, Time: rec.Time}
}

// Head is the plain head, for Verify.
func (h SignedHead) Head() Head { return Head{Seq: h.Seq, Hash: h.Hash} }

// ErrHeadSignature reports a published head whose signature does not
// verify.
var ErrHeadSignature = errors.New("audit: the published head's signature does not verify")

// Check verifies the head's signature with keys, as Verify checks a
// checkpoint's.
func (h SignedHead) Check(keys Keys) error {
	pubs, ok := keys[h.Key]
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrHeadSignature, h.Key)
	}
	version, sig, err := parseSig(h.Sig)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHeadSignature, err)
	}
	pub, ok := pubs[version]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: unknown version %d of key %q", ErrHeadSignature, version, h.Key)
	}
	if !ed25519.Verify(pub, CheckpointMessage(h.Seq, h.Prev), sig) {
		return fmt.Errorf("%w: seq %d, key %q version %d", ErrHeadSignature, h.Seq, h.Key, version)
	}
	return nil
}
