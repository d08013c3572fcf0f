package compliance

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenproxy/tokenproxy/audit"
)

// This file is the peer side of the cluster's audit merge: the endpoint
// through which the other nodes read this node's trail, and the client
// that reads theirs.

const (
	peerPath = "/v1/cluster/audit/records"
	// Headers of a peer request: the calling node and the actor it reads
	// for, both written into this node's audit.read record.
	peerNodeHeader = "Tokenproxy-Node"
	peerForHeader  = "Tokenproxy-For"
	// peerHeaderTimeout bounds the wait for a peer's first byte: a node
	// that hangs must not hold an export; the stream itself may take
	// longer.
	peerHeaderTimeout = 10 * time.Second
	maxPeerHeader     = 200
)

// clusterUnknown stands for the other nodes in a merge's states when the
// store could not say which nodes there are.
const clusterUnknown = "(other nodes)"

// errPeerUnavailable marks a peer trail that could not be read.
var errPeerUnavailable = errors.New("peer trail unavailable")

// peerOnly authenticates a peer node (HTTPS, this run's token) and runs h
// with "peer:<node>" as the audit actor.
func (api *httpAPI) peerOnly(h func(w http.ResponseWriter, r *http.Request, forActor string)) http.Handler {
	const op = "peer_audit_read"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, client := r.Context(), clientOf(r)
		if api.svc.refusals.limited(client) {
			api.refuse(ctx, client, "unknown", op, "rate_limited")
			apiError(w, http.StatusTooManyRequests, "too many refused calls; try again later")
			return
		}
		if r.TLS == nil {
			api.refuse(ctx, client, "unknown", op, "not_https")
			apiError(w, http.StatusForbidden, "the compliance API is served over HTTPS only")
			return
		}
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want := api.svc.cluster.Self.Token
		if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
			api.refuse(ctx, client, "unknown", op, "unauthenticated")
			apiError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		node, forActor := r.Header.Get(peerNodeHeader), r.Header.Get(peerForHeader)
		if !plainHeader(node) || !plainHeader(forActor) {
			api.refuse(ctx, client, "peer:unknown", op, "bad_request")
			apiError(w, http.StatusBadRequest, "a peer request names its node and the actor it reads for")
			return
		}
		h(w, r.WithContext(audit.WithActor(ctx, "peer:"+node)), forActor)
	})
}

// plainHeader accepts a node id or an actor: printable ASCII, no address.
func plainHeader(s string) bool {
	if s == "" || len(s) > maxPeerHeader || strings.Contains(s, "@") {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// peerRecords answers another node with this node's records that the
// query selects, as written. The read is audited here too: this node's
// records left it.
func (api *httpAPI) peerRecords(w http.ResponseWriter, r *http.Request, forActor string) {
	q, err := parseQuery(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, ok := api.openForPeer(w, r, forActor)
	if !ok {
		return
	}
	defer f.Close()
	if err := writeLines(r.Context(), f, q, w); err != nil {
		api.svc.log.Error("peer audit read failed", "event", "audit_read_failed", "err", err)
	}
}

// openForPeer audits a peer's read of this node's trail (its records
// leave this node) and opens the trail, the answer's headers set; on
// failure it has answered and returns false.
func (api *httpAPI) openForPeer(w http.ResponseWriter, r *http.Request, forActor string) (io.ReadCloser, bool) {
	ctx := r.Context()
	rec := audit.Record{Event: audit.AuditRead, Outcome: "ok", Detail: map[string]string{"for": forActor, "via": "cluster"}}
	if err := api.svc.record(ctx, rec); err != nil {
		api.fail(w, ctx, err)
		return nil, false
	}
	f, err := api.svc.openTrail(ctx)
	if err != nil {
		api.fail(w, ctx, err)
		return nil, false
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	return f, true
}

// writeLines writes a trail's records that q selects to w, as written.
func writeLines(ctx context.Context, r io.Reader, q audit.Query, w io.Writer) error {
	return audit.SelectLines(r, q, func(_ audit.Record, line []byte) error {
		if _, err := w.Write(line); err != nil {
			return err
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
		return ctx.Err()
	})
}

// readPeer opens another node's records that q selects, for actor.
func (c *Service) readPeer(ctx context.Context, t peerTarget, q audit.Query, actor string) (io.ReadCloser, error) {
	return c.getPeer(ctx, t, peerPath, encodeQuery(q), actor)
}

// getPeer opens a peer endpoint's answer to query, for actor.
func (c *Service) getPeer(ctx context.Context, t peerTarget, path, query, actor string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.peer.URL, "/")+path+"?"+query, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: node %s: %w", errPeerUnavailable, t.node, err)
	}
	req.Header.Set("Authorization", "Bearer "+t.peer.Token)
	req.Header.Set(peerNodeHeader, c.cluster.Node)
	req.Header.Set(peerForHeader, actor)
	tr := &http.Transport{TLSClientConfig: pinnedTLS(t.peer.CertSHA256), ResponseHeaderTimeout: peerHeaderTimeout,
		DisableKeepAlives: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: node %s: %w", errPeerUnavailable, t.node, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: node %s answered %s", errPeerUnavailable, t.node, resp.Status)
	}
	return resp.Body, nil
}

// pinnedTLS accepts exactly the certificate a peer published.
func pinnedTLS(sum string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not verified against a CA: the certificate itself
		// is pinned, from the entry the node published in the store.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(got[:])), []byte(sum)) != 1 {
				return errors.New("peer certificate is not the one it published")
			}
			return nil
		},
	}
}

// encodeQuery is parseQuery's inverse.
func encodeQuery(q audit.Query) string {
	v := url.Values{}
	if q.FromSeq > 0 {
		v.Set("from_seq", strconv.FormatUint(q.FromSeq, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	for _, e := range q.Events {
		v.Add("event", e)
	}
	if q.Token != "" {
		v.Set("token", q.Token)
	}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	return v.Encode()
}

// sources opens every node's records that q selects: this node's trail,
// and each live peer's through its endpoint. states lists each node
// (this one first) with why its records are missing, when they are.
// closeAll closes what was opened.
func (c *Service) sources(ctx context.Context, q audit.Query) (srcs []TrailSource, states []TrailState, closeAll func(), err error) {
	var closers []io.Closer
	closeAll = func() {
		for _, cl := range closers {
			cl.Close()
		}
	}
	f, err := c.openTrail(ctx)
	if err != nil {
		return nil, nil, closeAll, err
	}
	closers = append(closers, f)
	node := ""
	if c.cluster != nil {
		node = c.cluster.Node
	}
	srcs, states = []TrailSource{{Node: node, R: f}}, []TrailState{{Node: node}}
	if c.cluster == nil {
		return srcs, states, closeAll, nil
	}
	live, absent, err := c.cluster.others(ctx)
	if err != nil {
		// The store is away (quorum lost): this node's records are still
		// read, and the answer says that the others' could not be.
		c.log.Warn("the cluster's nodes could not be listed; reading this node's trail only", "event", "peer_trail_unavailable", "err", err)
		return srcs, append(states, TrailState{Node: clusterUnknown, Missing: "the cluster's node list could not be read from the store (see the log)"}), closeAll, nil
	}
	actor := audit.ActorFrom(ctx)
	for _, t := range live {
		rc, err := c.readPeer(ctx, t, q, actor)
		if err != nil {
			c.log.Warn("a node's audit trail is missing from a cluster read", "event", "peer_trail_unavailable", "node", t.node, "err", err)
			states = append(states, TrailState{Node: t.node, Missing: "its node did not answer (see the log)"})
			continue
		}
		closers = append(closers, rc)
		srcs = append(srcs, TrailSource{Node: t.node, R: rc})
		states = append(states, TrailState{Node: t.node})
	}
	for _, node := range absent {
		states = append(states, TrailState{Node: node, Missing: "no live node serves its trail"})
	}
	return srcs, states, closeAll, nil
}

// counted returns states with each node's records counted from recs.
func counted(states []TrailState, recs []MergedRecord) []TrailState {
	for _, r := range recs {
		for i := range states {
			if states[i].Node == r.Node {
				states[i].Records++
			}
		}
	}
	return states
}
