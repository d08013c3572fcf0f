package compliance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// This file is what a cluster node gives the service so that a subject
// export and an audit listing on any node read every node's trail
// (DESIGN.md, Compliance and audit; issue 15 item 6). Each node keeps its
// trail on its own disk; the store only says which nodes exist and how to
// reach them. A node reads the others' records through their admin
// listeners (peer.go), authenticated by a token each node makes at start
// and publishes with its address and certificate, so no credential is
// configured and none outlives the node's run.

// Cluster is the service's view of the other nodes; nil on a single node.
type Cluster struct {
	// Node is this node's id.
	Node string
	// Self is this node's entry, as it is published: the other nodes
	// present its Token to this node's peer endpoint.
	Self Peer
	// Peers returns the live nodes' published entries (JSON of Peer) by
	// node id, this node's included (etcdstore.Store.Peers).
	Peers func(ctx context.Context) (map[string][]byte, error)
	// Heads returns the published audit heads by node id
	// (etcdstore.Store.AuditHeads): every node that kept a trail, live or
	// not, so that a node that is down is reported, not forgotten.
	Heads func(ctx context.Context) (map[string][]byte, error)
	// Store is the map's store: the cluster verify lists its tokens to
	// find one without a creation record in any trail (nil: not checked).
	Store tokenize.Store
}

// Peer is how the other nodes reach a node's trail.
type Peer struct {
	// URL is the base URL of its admin listener (https://host:port).
	URL string `json:"url"`
	// CertSHA256 pins its admin certificate (SHA-256 of the DER): the
	// entry comes from the store every node trusts, so no CA is needed.
	CertSHA256 string `json:"cert_sha256"`
	// Token is the bearer token its peer endpoint accepts.
	Token string `json:"token"`
}

// NewPeer returns this node's entry: its admin URL, the certificate its
// admin listener serves, and a new random token.
func NewPeer(url string, cert *x509.Certificate) (Peer, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Peer{}, err
	}
	return Peer{URL: url, CertSHA256: certSum(cert), Token: hex.EncodeToString(b)}, nil
}

// WithCert returns the entry for a reloaded admin certificate.
func (p Peer) WithCert(cert *x509.Certificate) Peer {
	p.CertSHA256 = certSum(cert)
	return p
}

// Encode is the entry as the store holds it.
func (p Peer) Encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

func certSum(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TrailState says what a merge read of one node's trail.
type TrailState struct {
	Node string `json:"node"`
	// Records is how many of its records the merge returned.
	Records int `json:"records"`
	// Missing says why its records are not there ("" when they are).
	Missing string `json:"missing,omitempty"`
}

// peerTarget is another node to read from.
type peerTarget struct {
	node string
	peer Peer
}

// others returns the live nodes to read from and the nodes that kept a
// trail but have no live entry (down, or serving no compliance API).
func (c *Cluster) others(ctx context.Context) (live []peerTarget, absent []string, err error) {
	raw, err := c.Peers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster's nodes: %w", err)
	}
	heads, err := c.Heads(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster's audit heads: %w", err)
	}
	for _, node := range slices.Sorted(maps.Keys(raw)) {
		if node == c.Node {
			continue
		}
		var p Peer
		if err := json.Unmarshal(raw[node], &p); err != nil || p.URL == "" || p.Token == "" {
			absent = append(absent, node)
			continue
		}
		live = append(live, peerTarget{node: node, peer: p})
	}
	for _, node := range slices.Sorted(maps.Keys(heads)) {
		if _, ok := raw[node]; !ok && node != c.Node {
			absent = append(absent, node)
		}
	}
	slices.Sort(absent)
	return live, absent, nil
}

// addStates adds a merge read's states to those of earlier reads (an
// export reads once per token): records add up, a node missing once is
// missing.
func addStates(acc, states []TrailState) []TrailState {
	for _, st := range states {
		i := slices.IndexFunc(acc, func(a TrailState) bool { return a.Node == st.Node })
		if i < 0 {
			acc = append(acc, st)
			continue
		}
		acc[i].Records += st.Records
		if acc[i].Missing == "" {
			acc[i].Missing = st.Missing
		}
	}
	return acc
}

// Headers of a cluster's audit listing: the nodes whose trails it merged,
// and those whose records are missing from it, so that a reader never
// takes a partial listing for the whole.
const (
	TrailsHeader        = "Tokenproxy-Trails"
	TrailsMissingHeader = "Tokenproxy-Trails-Missing"
)

func setTrailHeaders(w http.ResponseWriter, states []TrailState) {
	var read, missing []string
	for _, st := range states {
		if st.Node == "" {
			return // a single node
		}
		if st.Missing != "" {
			missing = append(missing, st.Node)
		} else {
			read = append(read, st.Node)
		}
	}
	w.Header().Set(TrailsHeader, strings.Join(read, ", "))
	if len(missing) > 0 {
		w.Header().Set(TrailsMissingHeader, strings.Join(missing, ", "))
	}
}
