package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite"
)

// The figures behind the worst case check-config states (issue 17, item 7;
// measured with test/bench-memory.sh, docs/benchmarks.md, and written in
// deploy/examples/quickstart.yaml under rewrite.limits).
const (
	// sessionWorstBytes: what one session can take outside the held-part
	// budget: 1 MiB of spool in memory, the first 256 KiB of each part
	// held whole with its decoded, scanned and rewritten copies and the
	// leak guard's, and the session's buffers. 200 sessions of 250 KB
	// HTML parts measured about half a MiB each.
	sessionWorstBytes = 3 << 20
	// heldCostFactor: the peak cost of a part held whole, per byte of
	// it: its bytes, decoded text, the scanner's view, the rewritten and
	// re-encoded part, and the guard's copies (a 16 MB base64 attached
	// message: about 10 times).
	heldCostFactor = 10
)

// attachmentNeed is what an attachment at the attachment limits counts
// against its route's held-part budget: its raw bytes (base64, lines and
// all), decoded bytes and expansion (rewrite/hold.go). An opened
// attachment is held within that budget, so opened attachments add
// nothing per session to the worst case; its peak cost per byte counted
// is below heldCostFactor (a 13.7 MB gzip attachment expanding to 60 MB
// of text naming customers, 92 MB counted, peaked at 262-358 MiB through
// proxy rewrite: about 4 times).
func attachmentNeed(l policy.AttachmentLimits) int64 {
	return rewrite.HeldByAttachment(l.MaxBytes, l.MaxExpandedBytes)
}

// memoryEstimate is the worst case of a configuration, in bytes.
type memoryEstimate struct {
	sessions   int   // client connections, both routes
	total      int64 // sessions' share plus both routes' held-part budgets
	attachment int64 // what an attachment at the limits counts against a budget
}

func worstMemory(cfg *policy.Config) memoryEstimate {
	n := cfg.InboundConnLimits().MaxConnections + cfg.OutboundConnLimits().MaxConnections
	held := 2 * cfg.Rewrite.Limits.MaxHeldBytes * heldCostFactor
	return memoryEstimate{sessions: n, total: int64(n)*sessionWorstBytes + held,
		attachment: attachmentNeed(cfg.Rewrite.Attachments.Limits)}
}

// reportMemory writes the worst case of cfg to out, and a warning to warn
// when it exceeds this machine's memory (total > 0).
func reportMemory(out, warn io.Writer, cfg *policy.Config, machine int64) {
	e := worstMemory(cfg)
	fmt.Fprintf(out, "# memory, worst case: about %d MiB (%d sessions x %d MiB, 2 routes x rewrite.limits.max_held_bytes x %d; "+
		"opened attachments are held within max_held_bytes)\n",
		e.total>>20, e.sessions, sessionWorstBytes>>20, heldCostFactor)
	if machine > 0 && e.total > machine {
		fmt.Fprintf(warn, "warning: the worst case of this configuration (about %d MiB) exceeds this machine's memory (%d MiB): "+
			"lower smtp.max_connections (or the routes' max_connections) or rewrite.limits.max_held_bytes\n",
			e.total>>20, machine>>20)
	}
	if budget := cfg.Rewrite.Limits.MaxHeldBytes; e.attachment > budget {
		fmt.Fprintf(warn, "warning: an attachment at rewrite.attachments.limits (max_bytes, max_expanded_bytes) counts up to %d MiB "+
			"against rewrite.limits.max_held_bytes (%d MiB): a message with one is refused (552 5.3.4); "+
			"raise max_held_bytes or lower those limits\n", e.attachment>>20, budget>>20)
	}
}

// machineMemory is MemTotal from /proc/meminfo, or 0 where it cannot be read.
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
