package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/tokenproxy/tokenproxy/compliance"
	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/tokenize"
)

// peerStore is a cluster store's part in the audit merge
// (etcdstore.Store): where the nodes publish how to reach their trails.
type peerStore interface {
	PutPeer(ctx context.Context, value []byte) error
	Peers(ctx context.Context) (map[string][]byte, error)
	AuditHeads(ctx context.Context) (map[string][]byte, error)
	NodeID() string
}

const peerPublishTimeout = 5 * time.Second

// clusterPeers returns the compliance service's view of the cluster, after
// publishing this node's entry, so that an export or an audit listing on
// any node reads this node's trail too. nil on bbolt, or without the
// compliance API (no HTTPS admin listener to be read through).
func clusterPeers(ctx context.Context, cfg *policy.Config, db tokenize.Store, cert *smtp.CertStore, log *slog.Logger) *compliance.Cluster {
	ps, ok := db.(peerStore)
	if !ok || !cfg.Compliance.Enabled || cert == nil {
		return nil
	}
	base := peerURL(cfg)
	self, err := compliance.NewPeer(base, cert.Leaf())
	if err != nil {
		log.Error("no peer token: this node's trail is not read by the others", "event", "peer_unpublished", "err", err)
		return nil
	}
	c := &compliance.Cluster{Node: ps.NodeID(), Self: self, Peers: ps.Peers, Heads: ps.AuditHeads, Store: db}
	if base == "" {
		log.Warn("admin.listen names no host: the other nodes cannot read this node's audit trail; set store.etcd.admin_url",
			"event", "peer_unpublished")
		return c
	}
	if loopbackURL(base) {
		// Fine for nodes sharing one host (tests, evaluation); nodes on
		// other hosts would dial their own loopback, find a certificate
		// other than the one pinned, and report this node's trail missing.
		log.Warn("the other nodes read this node's audit trail at a loopback address; on several hosts set store.etcd.admin_url",
			"event", "peer_loopback", "url", base)
	}
	publishPeer(ctx, ps, self, log)
	return c
}

// publishPeer puts this node's entry in the store (again after the admin
// certificate was reloaded: peers pin it).
func publishPeer(ctx context.Context, ps peerStore, self compliance.Peer, log *slog.Logger) {
	pctx, cancel := context.WithTimeout(ctx, peerPublishTimeout)
	defer cancel()
	if err := ps.PutPeer(pctx, self.Encode()); err != nil {
		log.Error("peer entry not published: the other nodes cannot read this node's audit trail", "event", "peer_unpublished", "err", err)
	}
}

// peerURL is store.etcd.admin_url, or https://<admin.listen> when that
// names a host; "" when it does not (0.0.0.0, [::], or no host).
func peerURL(cfg *policy.Config) string {
	if cfg.Store.Etcd.AdminURL != "" {
		return cfg.Store.Etcd.AdminURL
	}
	host, _, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return "https://" + cfg.Admin.Listen
}

// loopbackURL says whether a URL names a loopback host.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()
}

// republishPeer publishes the entry with the reloaded admin certificate.
func republishPeer(ctx context.Context, c *compliance.Cluster, cfg *policy.Config, db tokenize.Store, cert *smtp.CertStore, log *slog.Logger) {
	ps, ok := db.(peerStore)
	if c == nil || !ok || peerURL(cfg) == "" {
		return
	}
	publishPeer(ctx, ps, c.Self.WithCert(cert.Leaf()), log)
}
