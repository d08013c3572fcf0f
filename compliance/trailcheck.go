package compliance

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// This file judges one node's trail against the head the node published
// (DESIGN.md, Compliance and audit; issue 15 item 6). `proxy audit verify
// --cluster` (trails an auditor collected) and the service's verify on a
// cluster node (trails read through the peer endpoint) share it, so both
// judge a cluster by the same rules.

// Verdicts of a node's trail.
const (
	TrailOK          = "ok"
	TrailFailed      = "failed"
	TrailNotVerified = "not_verified" // its trail could not be read: never "ok"
)

// TrailCheck is the verdict on one node's trail.
type TrailCheck struct {
	Node  string `json:"node"`
	State string `json:"state"`
	// Report is the chain's verification; nil when the trail was not read.
	Report *audit.Report `json:"report,omitempty"`
	// Head is the signed head the node published; nil when it published none.
	Head *audit.SignedHead `json:"published_head,omitempty"`
	// Problems are the findings against the published head, named.
	Problems []string `json:"problems,omitempty"`
	// NotVerified says why the trail could not be read.
	NotVerified string `json:"not_verified,omitempty"`
	// created are the token local parts the trail's token.created
	// records name.
	created map[string]bool
}

// OK says the trail was read and verified.
func (c TrailCheck) OK() bool { return c.State == TrailOK }

// NotRead returns the verdict on a trail that could not be read.
func NotRead(node string, head *audit.SignedHead, why string) TrailCheck {
	return TrailCheck{Node: node, State: TrailNotVerified, Head: head, NotVerified: why}
}

// CheckTrail verifies a node's trail read from r (the chain, the
// checkpoint signatures with keys) and compares it with the head the node
// published (nil: none). The published head is the trail's promise of its
// own length, signed: a trail that does not reach it with its hash was
// cut back or replaced, whoever serves it. The trail is read once, so a
// peer's stream can be judged as it arrives. The error is for I/O only.
func CheckTrail(ctx context.Context, node string, r io.Reader, head *audit.SignedHead, keys audit.Keys) (TrailCheck, error) {
	c := TrailCheck{Node: node, Head: head, created: map[string]bool{}}
	var want *audit.Head
	if head != nil {
		h := head.Head()
		want = &h
		if err := head.Check(keys); err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("published head: %v", err))
		}
	}
	// One pass, two readers: Verify judges the chain; the scan collects
	// the creations the map's tokens are compared with.
	pr, pw := io.Pipe()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		err := audit.Scan(pr, func(rec audit.Record, _ []byte) error {
			if rec.Event == audit.TokenCreated {
				for _, t := range rec.Tokens {
					c.created[TokenLocal(t)] = true
				}
			}
			return nil
		})
		// A line Scan cannot parse is Verify's finding (malformed), and
		// the creations after it are not collected: the trail fails
		// anyway. Drain, so that Verify reads on to the end.
		_ = err
		io.Copy(io.Discard, pr)
	}()
	rep, err := audit.Verify(io.TeeReader(&ctxReader{ctx: ctx, r: r}, pw), want, keys)
	pw.CloseWithError(err)
	<-scanned
	if err != nil {
		return c, fmt.Errorf("node %s: %w", node, err)
	}
	c.Problems = append(c.Problems, headFindings(&rep, head)...)
	c.Report = &rep
	c.State = TrailOK
	if len(c.Problems) > 0 || !rep.OK() {
		c.State = TrailFailed
	}
	return c, nil
}

// headFindings takes Verify's findings about the published head out of
// the report (Verify words them for a head file) and names them. Verify
// reports a trail shorter than its head as truncated at the last seq, and
// a trail whose record at the head's seq has another hash as a head
// mismatch (line 0 on an empty trail); a line cut in the middle is
// truncated at seq 0 on its own line, and stays.
func headFindings(rep *audit.Report, head *audit.SignedHead) []string {
	if head == nil {
		return nil
	}
	var out []string
	kept := rep.Problems[:0]
	for _, p := range rep.Problems {
		switch {
		case p.Kind == audit.ProblemTruncated && rep.Last.Seq < head.Seq && p.Seq == rep.Last.Seq && (p.Seq > 0 || p.Line == 0):
			out = append(out, fmt.Sprintf("the trail ends at seq %d, shorter than the head it published (seq %d)", rep.Last.Seq, head.Seq))
		case p.Kind == audit.ProblemHead:
			out = append(out, fmt.Sprintf("the trail's record at seq %d is not the head it published", head.Seq))
		default:
			kept = append(kept, p)
		}
	}
	rep.Problems = kept
	return out
}

// ctxReader stops a read when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// Created merges the token local parts that checks' token.created
// records name.
func Created(checks []TrailCheck) map[string]bool {
	out := map[string]bool{}
	for _, c := range checks {
		for t := range c.created {
			out[t] = true
		}
	}
	return out
}

// UncreatedTokens lists the map's tokens (live or erased) whose creation
// record no trail holds: a token made without an audit record, or a
// record deleted from a trail. Only keys are read, so no data key is
// needed.
func UncreatedTokens(ctx context.Context, db tokenize.Store, created map[string]bool) (n int, missing []string, err error) {
	err = db.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(local string, _ []byte) (bool, error) {
			n++
			if !created[local] {
				missing = append(missing, local)
			}
			return true, ctx.Err()
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read the map's tokens: %w", err)
	}
	return n, missing, nil
}

// TokenLocal is a token's local part in lower case: records name token
// addresses, the map keys their local parts.
func TokenLocal(tok string) string {
	if at := strings.LastIndexByte(tok, '@'); at >= 0 {
		tok = tok[:at]
	}
	return strings.ToLower(tok)
}
