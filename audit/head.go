package audit

import (
	"fmt"
	"os"
	"strconv"
)

// Head names the last record: its Seq and Hash.
type Head struct {
	Seq  uint64
	Hash string
}

// headSize is the fixed length of the head file: "%020d %s\n" with a
// 64-hex hash. A fixed size lets every update overwrite it in place with
// one WriteAt, so a reader never sees a shorter old value's leftovers.
const headSize = 20 + 1 + 64 + 1

// HeadPath returns the head file of the log at path.
func HeadPath(path string) string { return path + ".head" }

func formatHead(h Head) []byte {
	return fmt.Appendf(nil, "%020d %s\n", h.Seq, h.Hash)
}

func parseHead(b []byte) (Head, error) {
	if len(b) != headSize || b[20] != ' ' || b[headSize-1] != '\n' || !isLowerHex(b[21:85]) {
		return Head{}, fmt.Errorf("audit: malformed head file (%d bytes)", len(b))
	}
	seq, err := strconv.ParseUint(string(b[:20]), 10, 64)
	if err != nil {
		return Head{}, fmt.Errorf("audit: malformed head file: %w", err)
	}
	return Head{Seq: seq, Hash: string(b[21:85])}, nil
}

// ReadHead reads a head file (see HeadPath). A missing file is an error
// matching os.ErrNotExist.
func ReadHead(path string) (Head, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Head{}, fmt.Errorf("audit: read head: %w", err)
	}
	return parseHead(b)
}

// headFile keeps the head file open for the writer. It is written after
// each batch is in the log file (and synced, with Options.Sync), and never
// synced itself: after a power loss it may lag the log, never lead it.
type headFile struct{ f *os.File }

func openHeadFile(path string) (*headFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open head: %w", err)
	}
	return &headFile{f: f}, nil
}

func (h *headFile) write(head Head) error {
	_, err := h.f.WriteAt(formatHead(head), 0)
	return err
}

func (h *headFile) close() error { return h.f.Close() }
