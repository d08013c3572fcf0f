package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// Status is the cluster as this node sees it, for `proxy cluster status`.
type Status struct {
	Members  []MemberStatus
	Leader   uint64 // member ID of the leader; 0 when no reachable member knows one
	RaftTerm uint64 // the highest term a reachable member reports
	Revision int64  // the cluster's revision, read linearizably by this node (0 if that failed)
	// Nodes holds the map's node registrations (nodes/<id>), by node id,
	// as stored: their format belongs to the code that writes them.
	Nodes map[string][]byte
	// Heads holds the nodes' published audit heads (audit/heads/<id>),
	// by node id, as stored.
	Heads map[string][]byte
	Err   error // why the linearizable read failed, if it did
}

// MemberStatus is one etcd member.
type MemberStatus struct {
	ID        uint64
	Name      string
	Endpoint  string // the client URL asked
	Reachable bool
	Leader    uint64 // the leader this member knows, 0 for none
	RaftTerm  uint64
	Revision  int64
	Err       error // why it could not be asked
}

// Healthy says the cluster has a leader that this node reached through a
// linearizable read, that is with a quorum behind it.
func (st Status) Healthy() bool { return st.Leader != 0 && st.Err == nil }

// ReadStatus connects to the cluster and asks every member for its view
// of it, each call bounded by RequestTimeout, so a member that is down
// costs only that. It writes nothing (Open would write the schema) and
// needs no quorum: the member list is read serializably, so a cluster
// that lost its quorum still shows who is there and who is missing.
func ReadStatus(ctx context.Context, opts Options) (Status, error) {
	if err := opts.defaults(); err != nil {
		return Status{}, fmt.Errorf("%w: etcd options: %w", tokenize.ErrStore, err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: opts.Endpoints, TLS: opts.TLS, Username: opts.Username, Password: opts.Password,
		DialTimeout: opts.DialTimeout, Context: ctx, Logger: zap.NewNop(),
	})
	if err != nil {
		return Status{}, unreachable(opts.Endpoints, err)
	}
	defer cli.Close()
	s := &Store{cli: cli, opts: opts, keys: newLayout(opts)}
	return s.status(ctx)
}

func (s *Store) status(ctx context.Context) (Status, error) {
	cctx, cancel := s.call(ctx)
	list, err := s.cli.MemberList(cctx, clientv3.WithSerializable())
	cancel()
	if err != nil {
		return Status{}, unreachable(s.opts.Endpoints, err)
	}
	var st Status
	for _, m := range list.Members {
		ms := s.memberStatus(ctx, m.ID, m.Name, m.ClientURLs)
		if ms.Reachable && ms.RaftTerm >= st.RaftTerm {
			st.RaftTerm, st.Leader = ms.RaftTerm, ms.Leader
		}
		st.Members = append(st.Members, ms)
	}
	st.Revision, st.Nodes, st.Err = s.readNodes(ctx)
	if st.Err == nil {
		st.Heads, st.Err = s.AuditHeads(ctx)
	}
	return st, nil
}

func (s *Store) memberStatus(ctx context.Context, id uint64, name string, urls []string) MemberStatus {
	ms := MemberStatus{ID: id, Name: name}
	if len(urls) == 0 {
		ms.Err = errNotStarted
		return ms
	}
	ms.Endpoint = urls[0]
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Status(cctx, ms.Endpoint)
	if err != nil {
		ms.Err = err
		return ms
	}
	ms.Reachable, ms.Leader, ms.RaftTerm, ms.Revision = true, resp.Leader, resp.RaftTerm, resp.Header.Revision
	return ms
}

// errNotStarted: a member added to the cluster that never started has
// no client URL.
var errNotStarted = errors.New("member has not started (no client URL)")

// readNodes reads nodes/ linearizably: the revision of that read is this
// node's view of the cluster's revision.
func (s *Store) readNodes(ctx context.Context) (int64, map[string][]byte, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	prefix := s.keys.base + "nodes/"
	resp, err := s.cli.Get(cctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, nil, fail("read nodes", err)
	}
	nodes := map[string][]byte{}
	for _, kv := range resp.Kvs {
		nodes[strings.TrimPrefix(string(kv.Key), prefix)] = kv.Value
	}
	return resp.Header.Revision, nodes, nil
}
