package compliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/tokenproxy/tokenproxy/audit"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// This file is the service's verify on a cluster node: every node's trail
// is verified here, from its records, against the head the node published
// in the store (CheckTrail), as `proxy audit verify --cluster` does with
// collected trails. A peer is never asked for its own verdict: a node
// must not vouch for a trail it does not show, and the signed head in the
// store is what a trail served by anyone is held to.

// ClusterReport is the verification of every node's trail.
type ClusterReport struct {
	OK bool `json:"ok"`
	// Nodes are this node first, then the others by id.
	Nodes     []TrailCheck  `json:"nodes"`
	Creations CreationCheck `json:"creations"`
}

// CreationCheck says whether each of the map's tokens has its creation
// record in some node's trail.
type CreationCheck struct {
	Checked bool `json:"checked"`
	// NotChecked says why it was not (a trail not read would make tokens
	// created on its node look uncreated).
	NotChecked string `json:"not_checked,omitempty"`
	Tokens     int    `json:"tokens"`
	// Missing are token addresses without a creation record, at most
	// maxMissingListed; MoreMissing counts the rest.
	Missing     []string `json:"missing,omitempty"`
	MoreMissing int      `json:"more_missing,omitempty"`
}

const maxMissingListed = 100

// Clustered says whether the service's verify and listings read every
// node's trail.
func (c *Service) Clustered() bool { return c.cluster != nil }

// VerifyCluster verifies every node's trail (audited audit.verify, as
// VerifyAudit); progress, when not nil, is told how many nodes are done
// of how many. A node whose trail cannot be read is reported not
// verified, and the cluster then does not verify.
func (c *Service) VerifyCluster(ctx context.Context, progress func(done, total int64)) (ClusterReport, error) {
	if c.cluster == nil {
		return ClusterReport{}, fmt.Errorf("verify the cluster: this node is not a cluster node")
	}
	if err := c.record(ctx, audit.Record{Event: audit.AuditVerify, Outcome: "ok", Detail: map[string]string{"via": "cluster"}}); err != nil {
		return ClusterReport{}, err
	}
	var keys audit.Keys
	if c.keys != nil {
		ks, err := c.keys(ctx)
		if err != nil {
			return ClusterReport{}, fmt.Errorf("audit verification keys: %w", err)
		}
		keys = ks
	}
	// The map's tokens are listed before the trails are read: a token
	// made meanwhile is not held against a trail read before it.
	tokens, tokErr := c.mapTokens(ctx)
	heads, err := c.publishedHeads(ctx)
	if err != nil {
		c.log.Warn("the cluster's audit heads could not be read; verifying this node's trail only", "event", "audit_verify_partial", "err", err)
		local, err := c.checkLocal(ctx, nil, keys)
		if err != nil {
			return ClusterReport{}, err
		}
		nodes := []TrailCheck{local, NotRead(clusterUnknown, nil, "the cluster's nodes could not be read from the store (see the log)")}
		return ClusterReport{Nodes: nodes, Creations: CreationCheck{NotChecked: "the store could not be read"}}, nil
	}
	live, absent, err := c.cluster.others(ctx)
	if err != nil {
		return ClusterReport{}, err
	}
	total := int64(1 + len(live) + len(absent))
	tick := func(done int) {
		if progress != nil {
			progress(int64(done), total)
		}
	}
	local, err := c.checkLocal(ctx, heads[c.cluster.Node], keys)
	if err != nil {
		return ClusterReport{}, err
	}
	rep := ClusterReport{Nodes: []TrailCheck{local}}
	tick(1)
	for _, t := range live {
		rep.Nodes = append(rep.Nodes, c.checkPeer(ctx, t, heads[t.node], keys))
		tick(len(rep.Nodes))
	}
	for _, node := range absent {
		rep.Nodes = append(rep.Nodes, NotRead(node, heads[node], "no live node serves its trail"))
		tick(len(rep.Nodes))
	}
	rep.Creations = c.checkCreations(rep.Nodes, tokens, tokErr)
	rep.OK = rep.Creations.Checked && len(rep.Creations.Missing) == 0
	for _, n := range rep.Nodes {
		rep.OK = rep.OK && n.OK()
	}
	return rep, nil
}

// publishedHeads reads every node's signed head from the store.
func (c *Service) publishedHeads(ctx context.Context) (map[string]*audit.SignedHead, error) {
	raw, err := c.cluster.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the cluster's audit heads: %w", err)
	}
	heads := make(map[string]*audit.SignedHead, len(raw))
	for node, v := range raw {
		var h audit.SignedHead
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, fmt.Errorf("published audit head of node %s: %w", node, err)
		}
		heads[node] = &h
	}
	return heads, nil
}

// checkLocal verifies this node's own trail. Like a peer's (peerTrail),
// it is read after the creation records of the tokens committed so far
// are delivered to it (openTrail): the map's tokens were listed before,
// so none of them is reported without its record for an outbox lag.
func (c *Service) checkLocal(ctx context.Context, head *audit.SignedHead, keys audit.Keys) (TrailCheck, error) {
	f, err := c.openTrail(ctx)
	if err != nil {
		return TrailCheck{}, err
	}
	defer f.Close()
	return CheckTrail(ctx, c.cluster.Node, f, head, keys)
}

// checkPeer reads a peer's whole trail, as its file holds it (peerTrail),
// and verifies it here; a peer that does not answer, or whose stream breaks, is not
// verified.
func (c *Service) checkPeer(ctx context.Context, t peerTarget, head *audit.SignedHead, keys audit.Keys) TrailCheck {
	rc, err := c.getPeer(ctx, t, peerTrailPath, "", audit.ActorFrom(ctx))
	if err != nil {
		c.log.Warn("a node's audit trail could not be verified", "event", "peer_trail_unavailable", "node", t.node, "err", err)
		return NotRead(t.node, head, "its node did not answer (see the log)")
	}
	defer rc.Close()
	chk, err := CheckTrail(ctx, t.node, rc, head, keys)
	if err != nil {
		c.log.Warn("a node's audit trail could not be read to its end", "event", "peer_trail_unavailable", "node", t.node, "err", err)
		return NotRead(t.node, head, "its trail could not be read to its end (see the log)")
	}
	return chk
}

// mapTokens lists the map's token local parts; nil without a store.
func (c *Service) mapTokens(ctx context.Context) ([]string, error) {
	if c.cluster.Store == nil {
		return nil, nil
	}
	var out []string
	err := c.cluster.Store.View(ctx, func(tx tokenize.ReadTx) error {
		return tx.Tokens("", func(local string, _ []byte) (bool, error) {
			out = append(out, local)
			return true, ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the map's tokens: %w", err)
	}
	return out, nil
}

// checkCreations finds the tokens whose creation record no trail holds;
// only when every trail was read.
func (c *Service) checkCreations(nodes []TrailCheck, tokens []string, tokErr error) CreationCheck {
	switch {
	case c.cluster.Store == nil:
		return CreationCheck{NotChecked: "this node has no store to list the tokens of"}
	case tokErr != nil:
		c.log.Warn("the map's tokens could not be listed for the cluster verify", "event", "audit_verify_partial", "err", tokErr)
		return CreationCheck{NotChecked: "the map's tokens could not be listed (see the log)"}
	}
	for _, n := range nodes {
		if n.State == TrailNotVerified {
			return CreationCheck{NotChecked: "not every node's trail was read", Tokens: len(tokens)}
		}
	}
	created := Created(nodes)
	cc := CreationCheck{Checked: true, Tokens: len(tokens)}
	f := c.m.Format()
	for _, local := range tokens {
		if created[local] {
			continue
		}
		if len(cc.Missing) == maxMissingListed {
			cc.MoreMissing++
			continue
		}
		cc.Missing = append(cc.Missing, f.Address(local))
	}
	return cc
}

// verifyCluster answers the API's verify on a cluster node: "ok" for the
// whole cluster, "report" this node's chain (as on a single node),
// "nodes" each node's verdict and "creations" the check across trails.
func (api *httpAPI) verifyCluster(w http.ResponseWriter, r *http.Request) {
	rep, err := api.svc.VerifyCluster(r.Context(), nil)
	if err != nil {
		api.fail(w, r.Context(), err)
		return
	}
	apiJSON(w, http.StatusOK, map[string]any{"ok": rep.OK, "report": rep.Nodes[0].Report, "nodes": rep.Nodes, "creations": rep.Creations})
}

// peerTrailPath serves this node's whole trail to a verifying node.
const peerTrailPath = "/v1/cluster/audit/trail"

// peerTrail answers another node with this node's trail file as it is,
// byte for byte: the records endpoint selects records, and a line it
// cannot read would end its answer early, hiding from a verifier what
// follows. Audited here, as peerRecords.
func (api *httpAPI) peerTrail(w http.ResponseWriter, r *http.Request, forActor string) {
	f, ok := api.openForPeer(w, r, forActor)
	if !ok {
		return
	}
	defer f.Close()
	if _, err := io.Copy(w, &ctxReader{ctx: r.Context(), r: f}); err != nil {
		api.svc.log.Error("peer audit trail read failed", "event", "audit_read_failed", "err", err)
	}
}
