package rewrite

// heldBlockBytes is the block size a held part grows by once it outgrows
// one block. Growing one slice by append costs its size about five times
// over in copies (Go grows large slices by a quarter), and twice and a
// quarter at once while the last copy is made; blocks cost each byte one
// copy, into one slice of exactly the part's size at the end (twice the
// part at once, for that copy only).
const heldBlockBytes = 1 << 20

// held gathers the bytes of a part that is held whole (walker.collect).
type held struct {
	cur  []byte   // the block being filled; the walker's scratch at first
	full [][]byte // the blocks filled before cur
	n    int      // bytes in all
}

func (h *held) add(b []byte) {
	if len(h.cur)+len(b) > cap(h.cur) && cap(h.cur) >= heldBlockBytes {
		h.full = append(h.full, h.cur)
		h.cur = make([]byte, 0, max(heldBlockBytes, len(b)))
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

// dropLargeScratch lets the collector have a large part's bytes once
// nothing reads them any more: the scratch would otherwise keep them until
// the walk ends, while the rewritten part is written and the leak guard
// holds its own copy of it.
func (w *walker) dropLargeScratch() {
	if cap(w.scratch) > heldBlockBytes {
		w.scratch = nil
	}
}
