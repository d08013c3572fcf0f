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
	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
)

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
		if !c.OK() {
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

// checkNodeTrail verifies one trail as the compliance API's verify does
// (compliance.CheckTrail: chain, signatures, the published head); a node
// that published a head but whose trail is not in the directory fails.
func checkNodeTrail(ctx context.Context, node, path string, head audit.SignedHead, keys audit.Keys) (compliance.TrailCheck, error) {
	var h *audit.SignedHead
	if head.Seq != 0 {
		h = &head
	}
	if path == "" {
		c := compliance.NotRead(node, h, "")
		c.State = compliance.TrailFailed
		c.Problems = append(c.Problems, fmt.Sprintf("node %s published a head at seq %d, but there is no trail %s.jsonl", node, head.Seq, node))
		return c, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return compliance.TrailCheck{}, fmt.Errorf("node %s: %w", node, err)
	}
	defer f.Close()
	return compliance.CheckTrail(ctx, node, f, h, keys)
}

func printTrailCheck(w io.Writer, c compliance.TrailCheck) {
	verdict := "OK"
	if !c.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "node %s: %s\n", c.Node, verdict)
	if c.Head != nil {
		fmt.Fprintf(w, "  published head: seq %d %s (%s)\n", c.Head.Seq, c.Head.Hash, c.Head.Time.UTC().Format("2006-01-02T15:04:05Z"))
	} else {
		fmt.Fprintln(w, "  published head: none")
	}
	if c.Report != nil {
		fmt.Fprintf(w, "  trail:          %d records, last seq %d, %d checkpoints, %d unsigned at the end\n",
			c.Report.Records, c.Report.Last.Seq, c.Report.Checkpoints, c.Report.UnsignedTail)
		for _, p := range c.Report.Problems {
			fmt.Fprintf(w, "  line %d seq %d: %s: %s\n", p.Line, p.Seq, p.Kind, p.Text)
		}
	}
	for _, p := range c.Problems {
		if !strings.HasPrefix(p, "node ") {
			p = "node " + c.Node + ": " + p
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
}
