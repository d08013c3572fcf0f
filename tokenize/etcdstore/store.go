package etcdstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// schemaVersion is the key layout this binary reads and writes.
const schemaVersion = 1

// Defaults of Options.
const (
	DefaultPrefix         = "tp/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = time.Second
	DefaultFreshness      = time.Second
	// DefaultMaxTxnOps is etcd's own default --max-txn-ops.
	DefaultMaxTxnOps = 128
)

// Options configures Open.
type Options struct {
	Endpoints []string // client URLs of the cluster's members
	// Prefix starts every key; the map's keys live under
	// <Prefix><Tenant>/. Default "tp/".
	Prefix string
	Tenant string // required; no "/"
	// NodeID names this node's audit outbox; default the host name. It
	// must be unique per node: a node drains only its own outbox.
	NodeID string
	// TLS secures the client connections (mTLS with a client
	// certificate). Without it every endpoint must be on loopback.
	TLS                *tls.Config
	Username, Password string // etcd RBAC user, if any
	DialTimeout        time.Duration
	// RequestTimeout bounds each etcd call, so that a lost quorum fails
	// fast (ErrStore, 451 on the routes) instead of holding sessions. An
	// Update retries a leader change within the same bound.
	RequestTimeout time.Duration
	// Freshness bounds how stale the map's caches may be (Fresh): the
	// node is fresh while a linearizable read of the cluster's revision,
	// sent within Freshness, has been matched by the watch's progress.
	// Default 1 s.
	Freshness time.Duration
	// MaxTxnOps is the cluster's --max-txn-ops; default 128.
	MaxTxnOps int
	// ReadOnly opens the map for a reader that is not a node (an audit
	// verify): no node registration, no takeover of dead nodes' outboxes
	// (a reader would hold them without delivering), no schema write;
	// Update fails.
	ReadOnly bool
	// Registerer, when set, gets the store's metrics (latency,
	// freshness, watch restarts); Close removes them.
	Registerer prometheus.Registerer
	// LeaseTTL is how long this node's registration (nodes/<id>) outlives
	// its last keep-alive: after it, another node takes its outbox over
	// and its elections are lost. Default 5 s; etcd rounds up to whole
	// seconds and refuses less than about 2 s.
	LeaseTTL time.Duration
	Logger   *slog.Logger
}

func (o *Options) defaults() error {
	if len(o.Endpoints) == 0 {
		return errors.New("no etcd endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Tenant == "" || strings.Contains(o.Tenant, "/") {
		return fmt.Errorf("tenant %q: must be set and hold no /", o.Tenant)
	}
	if o.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node id: %w", err)
		}
		o.NodeID = host
	}
	if strings.Contains(o.NodeID, "/") {
		return fmt.Errorf("node id %q: must hold no /", o.NodeID)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Freshness <= 0 {
		o.Freshness = DefaultFreshness
	}
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TLS == nil {
		return plainOnLoopback(o.Endpoints)
	}
	return nil
}

// plainOnLoopback refuses plain-text endpoints off this host: the RBAC
// password and the wrapped keys would cross the network in clear.
func plainOnLoopback(endpoints []string) error {
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", ep, err)
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("endpoint %s: without TLS only loopback endpoints are allowed", ep)
		}
	}
	return nil
}

// Store is a tokenize.Store on an etcd cluster.
type Store struct {
	cli  *clientv3.Client
	opts Options
	log  *slog.Logger
	keys layout

	closed  atomic.Bool
	stop    context.CancelFunc // ends the watches
	bg      context.Context
	wg      sync.WaitGroup
	own     ownRevisions
	absent  absentKeys
	commits *groupCommit
	fresh   *freshness
	metrics *metrics

	session   atomic.Pointer[concurrency.Session] // this node's lease (liveness.go)
	peerEntry atomic.Pointer[[]byte]              // this node's peer entry, put again under a renewed lease (peers.go)
	takeovers takeovers                           // dead nodes' outboxes (takeover.go)
}

var _ tokenize.Freshness = (*Store)(nil)

var _ tokenize.Store = (*Store)(nil)

// Open connects to the cluster and checks the map's schema there (writing
// it on first use). A cluster that cannot be reached within DialTimeout
// is ErrStore naming the endpoints and the cause: the node refuses to
// start rather than serve without its map.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("%w: etcd options: %w", tokenize.ErrStore, err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: opts.Endpoints, TLS: opts.TLS, Username: opts.Username, Password: opts.Password,
		DialTimeout: opts.DialTimeout, Context: ctx,
		Logger: zap.NewNop(), // the store logs through slog, with its own events
	})
	if err != nil {
		return nil, unreachable(opts.Endpoints, err)
	}
	bg, stop := context.WithCancel(context.Background())
	s := &Store{cli: cli, opts: opts, log: opts.Logger, keys: newLayout(opts), bg: bg, stop: stop, fresh: newFreshness()}
	s.metrics = newMetrics(s, opts.Registerer)
	s.startCommitters()
	cctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if err := s.checkSchema(cctx); err != nil {
		s.Close()
		if errors.Is(err, tokenize.ErrSchemaTooNew) {
			return nil, err
		}
		return nil, unreachable(opts.Endpoints, diagnose(ctx, opts, err))
	}
	if opts.ReadOnly {
		return s, nil
	}
	if err := s.openSession(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Outboxes of nodes that died while this one was down are taken over
	// now, so that the map's start-up check covers them (takeover.go).
	if err := s.takeOver(cctx); err != nil {
		s.Close()
		return nil, err
	}
	s.startTakeovers()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.checkFreshness()
	}()
	return s, nil
}

func unreachable(endpoints []string, err error) error {
	return fmt.Errorf("%w: etcd at %s: %w", tokenize.ErrStore, strings.Join(endpoints, ","), err)
}

// checkSchema writes the schema version into an empty map and refuses a
// map written by a newer layout.
func (s *Store) checkSchema(ctx context.Context) error {
	key := s.keys.schema()
	if s.opts.ReadOnly {
		return s.checkSchemaRead(ctx, key)
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.Itoa(schemaVersion))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return err
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return fmt.Errorf("schema key %s vanished", key)
	}
	return checkSchemaValue(key, kvs[0].Value)
}

// checkSchemaRead checks the schema without writing it: an empty map has
// none yet.
func (s *Store) checkSchemaRead(ctx context.Context, key string) error {
	resp, err := s.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return err
	}
	return checkSchemaValue(key, resp.Kvs[0].Value)
}

func checkSchemaValue(key string, value []byte) error {
	v, err := strconv.Atoi(string(value))
	if err != nil {
		return fmt.Errorf("schema key %s: %q is not a version", key, value)
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: %s has schema version %d, this binary supports up to %d: run a newer tokenproxy",
			tokenize.ErrSchemaTooNew, key, v, schemaVersion)
	}
	return nil
}

// MaxBatch implements tokenize.Store: etcd checks the compares and the
// writes of a transaction against --max-txn-ops separately, so a batch
// may carry that many writes. The compares stay under the same bound by
// the rule in doc.go (at most one per key read by Token or Meta, or
// written after a Tokens scan visited it).
func (s *Store) MaxBatch() int { return s.opts.MaxTxnOps }

// Close implements tokenize.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.revoke()
	err := s.cli.Close()
	s.wg.Wait()
	s.metrics.unregister()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: close etcd client: %w", tokenize.ErrStore, err)
	}
	return nil
}

var errClosed = fmt.Errorf("%w: store closed", tokenize.ErrStore)

// call bounds one etcd call by the request timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

// fail wraps an etcd error as ErrStore, naming the operation.
func fail(op string, err error) error {
	return fmt.Errorf("%w: etcd %s: %w", tokenize.ErrStore, op, err)
}

// layout names the keys of one tenant's map (DESIGN.md, Store):
//
//	<prefix><tenant>/schema
//	<prefix><tenant>/t/<token>             record or tombstone
//	<prefix><tenant>/seen/<token>/<node>   the node's last-seen time of the token
//	<prefix><tenant>/outbox/<node>/<id>    audit outbox entry
//	<prefix><tenant>/meta/<name>           map values
//	<prefix><tenant>/keys/<purpose>/<ver>  wrapped data keys
//	<prefix><tenant>/nodes/<node>          live node, under its lease
//	<prefix><tenant>/takeover/<node>       dead node's outbox claimed, under the claimer's lease
//	<prefix><tenant>/elect/<task>/<lease>  election of the node that runs task
//	<prefix><tenant>/peers/<node>          how other nodes reach the node's compliance API, under its lease
//	<prefix>wipe                           compaction asked of the members' maintenance job
type layout struct {
	base, tokens, outbox, outboxes, meta, wrapped, nodes, takeovers, elections, seen string

	wipe string // <prefix>wipe: a wipe scheduled for the members (wipe.go)
}

func newLayout(o Options) layout {
	base := o.Prefix + o.Tenant + "/"
	return layout{base: base, tokens: base + "t/", outbox: base + "outbox/" + o.NodeID + "/",
		outboxes: base + "outbox/", meta: base + "meta/", wrapped: base + "keys/",
		nodes: base + "nodes/", takeovers: base + "takeover/", elections: base + "elect/",
		seen: base + "seen/", wipe: o.Prefix + "wipe"}
}

func (l layout) node(id string) string       { return l.nodes + id }
func (l layout) takeover(id string) string   { return l.takeovers + id }
func (l layout) nodeOutbox(id string) string { return l.outboxes + id + "/" }
func (l layout) election(task string) string { return l.elections + task + "/" }

func (l layout) schema() string            { return l.base + "schema" }
func (l layout) wipeRequest() string       { return l.wipe }
func (l layout) token(local string) string { return l.tokens + local }
func (l layout) metaKey(name string) string {
	return l.meta + name
}
