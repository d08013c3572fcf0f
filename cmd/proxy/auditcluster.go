package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

// trailCheck is the verdict on one node's trail.
type trailCheck struct {
	node     string
	rep      *audit.Report     // nil: no trail in the directory
	head     *audit.SignedHead // nil: the node published none
	problems []string          // cluster-level findings, named
}

func (c trailCheck) ok() bool { return len(c.problems) == 0 && (c.rep == nil || c.rep.OK()) }

// runClusterVerify verifies each node's trail as `audit verify` does, and
// against the signed head the node published in etcd: a node that
// published a head but whose trail is missing, or shorter than that
// head, fails, named. A trail with no published head is listed, not
// failed: a node that never checkpointed on etcd (or a bbolt one) has
// none. Across the trails it then lists the refs delivered twice (not a
// failure) and fails on each token of the map whose creation record no
// trail holds.
func runClusterVerify(ctx context.Context, a *app, dir, keysFile string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Store.Backend != "etcd" {
		return fmt.Errorf("--cluster reads the nodes' published heads from etcd: store.backend is %s", cfg.Store.Backend)
	}
	keys, err := a.verifyKeys(ctx, cfg, keysFile)
	if err != nil {
		return err
	}
	files, err := trailFiles(dir)
	if err != nil {
		return err
	}
	db, err := openClusterReader(ctx, a, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	heads, err := publishedHeads(ctx, db)
	if err != nil {
		return err
	}
	nodes := slices.Sorted(maps.Keys(mergeKeys(heads, files)))
	failed := 0
	for _, node := range nodes {
		c, err := checkNodeTrail(ctx, node, files[node], heads[node], keys)
		if err != nil {
			return err
		}
		printTrailCheck(a.stdout, c)
		if !c.ok() {
			failed++
		}
	}
	missing, err := checkAcrossTrails(ctx, a, cfg, db, files)
	if err != nil {
		return err
	}
	if failed > 0 || missing > 0 || len(nodes) == 0 {
		fmt.Fprintf(a.stdout, "result: FAILED, %d of %d node(s), %d token(s) without a creation record\n", failed, len(nodes), missing)
		return errAuditFails
	}
	fmt.Fprintf(a.stdout, "result: OK, %d node(s)\n", len(nodes))
	return nil
}

// checkAcrossTrails prints the findings that need every trail at once
// and returns how many of the map's tokens have no creation record.
func checkAcrossTrails(ctx context.Context, a *app, cfg *policy.Config, db tokenize.Store, files map[string]string) (int, error) {
	s, err := scanCluster(ctx, files)
	if err != nil {
		return 0, err
	}
	printDuplicates(a.stdout, s)
	n, missing, err := uncreatedTokens(ctx, db, s.created)
	if err != nil {
		return 0, err
	}
	printUncreated(a.stdout, tokenize.Format{Domain: cfg.RelayDomain}, n, missing)
	return len(missing), nil
}

// verifyKeys are the checkpoint keys: from --keys, or the key provider.
func (a *app) verifyKeys(ctx context.Context, cfg *policy.Config, keysFile string) (audit.Keys, error) {
	if keysFile != "" {
		return readKeysFile(keysFile)
	}
	s, closeFn, err := a.openVerifier(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return auditKeys(ctx, s)
}

// openClusterReader opens the map's etcd store without the proxy's keys:
// reading heads and token keys needs none.
func openClusterReader(ctx context.Context, a *app, cfg *policy.Config) (*etcdstore.Store, error) {
	opts, err := etcdOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.Logger = a.log
	// A reader, not a node: it must neither take the node_id this host's
	// proxy serve holds nor claim a dead node's outbox it would not deliver.
	opts.ReadOnly = true
	return etcdstore.Open(ctx, opts)
}

// publishedHeads reads every node's head from etcd.
func publishedHeads(ctx context.Context, s *etcdstore.Store) (map[string]audit.SignedHead, error) {
	raw, err := s.AuditHeads(ctx)
	if err != nil {
		return nil, err
	}
	heads := make(map[string]audit.SignedHead, len(raw))
	for node, v := range raw {
		var h audit.SignedHead
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, fmt.Errorf("published audit head of node %s: %w", node, err)
		}
		heads[node] = h
	}
	return heads, nil
}

// trailFiles maps node ids to their trails in dir (<node id>.jsonl).
func trailFiles(dir string) (map[string]string, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--trails: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, p := range paths {
		files[strings.TrimSuffix(filepath.Base(p), ".jsonl")] = p
	}
	return files, nil
}

func mergeKeys[A, B any](a map[string]A, b map[string]B) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// checkNodeTrail verifies one trail (chain, signatures, its head file if
// the auditor collected it) and compares it with the published head.
func checkNodeTrail(ctx context.Context, node, path string, head audit.SignedHead, keys audit.Keys) (trailCheck, error) {
	c := trailCheck{node: node}
	if head.Seq != 0 {
		c.head = &head
		if err := head.Check(keys); err != nil {
			c.problems = append(c.problems, fmt.Sprintf("node %s: published head: %v", node, err))
		}
	}
	if path == "" {
		c.problems = append(c.problems, fmt.Sprintf("node %s published a head at seq %d, but there is no trail %s.jsonl", node, head.Seq, node))
		return c, nil
	}
	rep, err := audit.VerifyFile(ctx, path, func(context.Context) (audit.Keys, error) { return keys, nil })
	if err != nil {
		return c, fmt.Errorf("node %s: %w", node, err)
	}
	c.rep = &rep
	if c.head != nil {
		p, err := compareHead(path, *c.head)
		if err != nil {
			return c, fmt.Errorf("node %s: %w", node, err)
		}
		if p != "" {
			c.problems = append(c.problems, fmt.Sprintf("node %s: %s", node, p))
		}
	}
	return c, nil
}

// compareHead checks that the trail reaches the published head's record
// with its hash; it names what is wrong, "" when nothing is.
func compareHead(path string, h audit.SignedHead) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := h.Head()
	rep, err := audit.Verify(f, &head, nil)
	if err != nil {
		return "", err
	}
	for _, p := range rep.Problems {
		switch p.Kind {
		case audit.ProblemTruncated:
			return fmt.Sprintf("the trail ends at seq %d, shorter than the head it published (seq %d)", rep.Last.Seq, h.Seq), nil
		case audit.ProblemHead:
			return fmt.Sprintf("the trail's record at seq %d is not the head it published", h.Seq), nil
		}
	}
	return "", nil
}

func printTrailCheck(w io.Writer, c trailCheck) {
	verdict := "OK"
	if !c.ok() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "node %s: %s\n", c.node, verdict)
	if c.head != nil {
		fmt.Fprintf(w, "  published head: seq %d %s (%s)\n", c.head.Seq, c.head.Hash, c.head.Time.UTC().Format("2006-01-02T15:04:05Z"))
	} else {
		fmt.Fprintln(w, "  published head: none")
	}
	if c.rep != nil {
		fmt.Fprintf(w, "  trail:          %d records, last seq %d, %d checkpoints, %d unsigned at the end\n",
			c.rep.Records, c.rep.Last.Seq, c.rep.Checkpoints, c.rep.UnsignedTail)
		for _, p := range c.rep.Problems {
			fmt.Fprintf(w, "  line %d seq %d: %s: %s\n", p.Line, p.Seq, p.Kind, p.Text)
		}
	}
	for _, p := range c.problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
