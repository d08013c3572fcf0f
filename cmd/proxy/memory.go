package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tokenproxy/tokenproxy/policy"
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
	// An attachment that is opened (office documents and archives up to
	// rewrite.attachments.limits.max_bytes, expanded up to
	// max_expanded_bytes; PDFs up to 8 MiB) is held whole, with its
	// expansion, the rewritten members, the re-packed and re-encoded
	// attachment and the leak guard's copies, outside the held-part
	// budget: each session may hold one at a time. attachExpandedFactor
	// is its peak per byte of the expansion budget (a 13.7 MB gzip
	// attachment expanding to 60 MB of text naming customers peaked at
	// 262-358 MiB through proxy rewrite: about 6 times); attachRawFactor
	// per byte of max_bytes, for content that barely expands (pictures
	// in a document, copied compressed): its raw, decoded, re-packed and
	// re-encoded forms and the guard's, about 10 times.
	attachExpandedFactor = 6
	attachRawFactor      = 10
)

// attachmentWorst is what one opened attachment can take at the limits.
func attachmentWorst(l policy.AttachmentLimits) int64 {
	return max(attachExpandedFactor*l.MaxExpandedBytes, attachRawFactor*l.MaxBytes)
}

// memoryEstimate is the worst case of a configuration, in bytes.
type memoryEstimate struct {
	sessions   int   // client connections, both routes
	perSession int64 // what one session takes outside the held-part budget
	attachment int64 // of which an opened attachment
	total      int64 // sessions' share plus both routes' held-part budgets
}

func worstMemory(cfg *policy.Config) memoryEstimate {
	n := cfg.InboundConnLimits().MaxConnections + cfg.OutboundConnLimits().MaxConnections
	held := 2 * cfg.Rewrite.Limits.MaxHeldBytes * heldCostFactor
	att := attachmentWorst(cfg.Rewrite.Attachments.Limits)
	per := sessionWorstBytes + att
	return memoryEstimate{sessions: n, perSession: per, attachment: att, total: int64(n)*per + held}
}

// reportMemory writes the worst case of cfg to out, and a warning to warn
// when it exceeds this machine's memory (total > 0).
func reportMemory(out, warn io.Writer, cfg *policy.Config, machine int64) {
	e := worstMemory(cfg)
	fmt.Fprintf(out, "# memory, worst case: about %d MiB (%d sessions x %d MiB, of which %d MiB for an attachment opened at "+
		"rewrite.attachments.limits; 2 routes x rewrite.limits.max_held_bytes x %d)\n",
		e.total>>20, e.sessions, e.perSession>>20, e.attachment>>20, heldCostFactor)
	if machine > 0 && e.total > machine {
		fmt.Fprintf(warn, "warning: the worst case of this configuration (about %d MiB) exceeds this machine's memory (%d MiB): "+
			"lower smtp.max_connections (or the routes' max_connections), rewrite.attachments.limits "+
			"(max_expanded_bytes, max_bytes) or rewrite.limits.max_held_bytes\n",
			e.total>>20, machine>>20)
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
