package rewrite

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrBusy: the messages in progress already hold as many bytes of parts
// held whole as Limits.MaxHeldBytes allows. A temporary condition: the
// sender should try again later (the routes answer 452 4.3.1).
var ErrBusy = errors.New("too much message content held at once")

// heldFreeBytes of each held part are not counted against the budget:
// most parts are smaller, and they pass without touching the shared
// counter. What a session can hold outside the budget is bounded by it
// (and by the nesting of encoded attached messages).
const heldFreeBytes = 256 << 10

// heldBudget bounds the bytes that the parts held whole by all the
// messages of one Rewriter (so one route) take at once: the part's own
// bytes are counted; what decoding, scanning and re-encoding it costs on
// top is a multiple of them (docs/benchmarks.md).
type heldBudget struct {
	max  int64
	used atomic.Int64
}

func (b *heldBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// reserveHeld counts a held part of n bytes so far against the budget.
// A message that alone would need more than the whole budget is refused
// for good (ErrLimit): it could never pass. Otherwise a full budget is a
// temporary refusal (ErrBusy): nothing waits, so two messages can never
// wait on each other. The leak guard's walks are not counted: what they
// hold mirrors what the rewrite they check writes.
func (w *walker) reserveHeld(n int) error {
	return reserveIn(w.budget, w.d, &w.reserved, int64(n))
}

// reserveIn is reserveHeld for a part of n bytes so far whose share of
// budget b is *reserved, in message d.
func reserveIn(b *heldBudget, d *direction, reserved *int64, n int64) error {
	need := n - heldFreeBytes - *reserved
	if b == nil || need <= 0 {
		return nil
	}
	if d.held+need > b.max {
		return fmt.Errorf("%w: parts held at once larger than %d bytes", ErrLimit, b.max)
	}
	if !b.reserve(need) {
		return ErrBusy
	}
	*reserved += need
	d.held += need
	return nil
}

// attachHold counts an opened attachment's expansion (attach.Reserve)
// on top of its raw and decoded bytes (base) as the walker's held part.
// A copy of the walker's share, not the walker: a walker that escaped
// into the closure would cost every message a heap walker.
type attachHold struct {
	budget   *heldBudget
	d        *direction
	reserved int64
	base     int64
}

func (a *attachHold) reserve(expanded int64) error {
	return reserveIn(a.budget, a.d, &a.reserved, a.base+expanded)
}

// holdAttachment starts counting an attachment of base raw and decoded
// bytes (its expansion comes on top through the returned hold's
// reserve); endHold takes the hold's share back into the walker.
func (w *walker) holdAttachment(base int) (*attachHold, error) {
	a := &attachHold{budget: w.budget, d: w.d, reserved: w.reserved, base: int64(base)}
	err := a.reserve(0)
	w.reserved = a.reserved
	return a, err
}

func (w *walker) endHold(a *attachHold) { w.reserved = a.reserved }

// HeldByAttachment is what an attachment opened at the attachment limits
// (decoded size maxBytes, expanding to maxExpanded) counts against the
// held-part budget: its raw bytes in base64, decoded bytes and expansion.
// check-config compares it with Limits.MaxHeldBytes.
func HeldByAttachment(maxBytes, maxExpanded int64) int64 {
	return rawSize(maxBytes) + maxBytes + maxExpanded
}

// releaseHeld gives back what the walker's last held part reserved; it is
// called when the next part starts and when the walk ends.
func (w *walker) releaseHeld() {
	if w.reserved > 0 {
		w.budget.used.Add(-w.reserved)
		w.d.held -= w.reserved
		w.reserved = 0
	}
}

// heldBlockBytes is the most a held part's first block, and each block
// after it, grows to. Growing one slice by append copies a large part
// about five times over (Go grows large slices by a quarter), and holds
// twice and a quarter its size while the last copy is made. The first
// block (the walker's scratch, pooled) grows by doubling; a larger part
// goes on in blocks, joined once into a slice of exactly its size.
const heldBlockBytes = 1 << 20

// held gathers the bytes of a part that is held whole (walker.collect).
type held struct {
	first []byte   // the first block: the walker's scratch, kept for the next part
	cur   []byte   // the block being filled
	full  [][]byte // the blocks filled before cur
	n     int      // bytes in all
}

func newHeld(scratch []byte) held { return held{first: scratch[:0], cur: scratch[:0]} }

func (h *held) add(b []byte) {
	if need := len(h.cur) + len(b); need > cap(h.cur) {
		if h.full == nil && need <= heldBlockBytes {
			c := min(max(2*cap(h.cur), need, 4<<10), heldBlockBytes)
			h.cur = append(make([]byte, 0, c), h.cur...)
			h.first = h.cur
		} else {
			// The next block grows with the part, up to heldBlockBytes:
			// a part just over one block gets no second block in full.
			h.full = append(h.full, h.cur)
			h.cur = make([]byte, 0, max(len(b), min(heldBlockBytes, max(64<<10, h.n/4))))
		}
	}
	h.cur = append(h.cur, b...)
	h.n += len(b)
}

// bytes returns the part as one slice: the first block itself when the
// part fits in it (most parts), else a copy of exactly the part's size.
func (h *held) bytes() []byte {
	if h.full == nil {
		return h.cur
	}
	out := make([]byte, 0, h.n)
	for _, b := range h.full {
		out = append(out, b...)
	}
	out = append(out, h.cur...)
	h.full, h.cur = nil, nil
	return out
}
