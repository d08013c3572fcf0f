package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/tokenize"
	"github.com/tokenproxy/tokenproxy/tokenize/boltstore"
	"github.com/tokenproxy/tokenproxy/tokenize/etcdstore"
	"github.com/tokenproxy/tokenproxy/vault"
)

// errNotBbolt refuses the commands that work on the bbolt file when the
// map lives in etcd.
var errNotBbolt = errors.New("the token map is in etcd (store.backend): back it up and restore it with etcd snapshots (see the runbook)")

// openStore opens the configured token map store.
func (a *app) openStore(ctx context.Context, cfg *policy.Config) (tokenize.Store, error) {
	if cfg.Store.Backend != "etcd" {
		return boltstore.Open(dbPath(cfg))
	}
	opts, err := etcdOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts.Logger = a.log
	if a.metricsReg != nil { // a nil *Registry in the interface would not be nil
		opts.Registerer = a.metricsReg
	}
	return etcdstore.Open(ctx, opts)
}

// etcdOptions turns store.etcd into the backend's options, reading the
// certificate and password files now so a bad file fails at start.
func etcdOptions(cfg *policy.Config) (etcdstore.Options, error) {
	e := cfg.Store.Etcd
	o := etcdstore.Options{Endpoints: e.Endpoints, Prefix: e.Prefix, Tenant: cfg.Tokens.Tenant, NodeID: e.NodeID,
		Username: e.Username, DialTimeout: e.DialTimeout, RequestTimeout: e.RequestTimeout, Freshness: e.Freshness}
	if e.PasswordFile != "" {
		pw, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("store.etcd.password_file: %w", err)
		}
		o.Password = strings.TrimSpace(string(pw))
	}
	if e.TLS.CAFile == "" {
		return o, nil
	}
	tc, err := etcdTLS(e.TLS)
	if err != nil {
		return o, err
	}
	o.TLS = tc
	return o, nil
}

// etcdTLS is the mTLS configuration of the client connections: TLS 1.2 at
// least, the cluster's CA only.
func etcdTLS(t policy.EtcdTLS) (*tls.Config, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("store.etcd.tls.ca_file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("store.etcd.tls.ca_file: %s holds no PEM certificate", t.CAFile)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// hasWrappedKeys reports whether the store already holds data keys, so a
// key provider must unwrap them rather than create new ones.
func hasWrappedKeys(ctx context.Context, s vault.Store) (bool, error) {
	keys, err := s.WrappedKeys(ctx)
	return len(keys) > 0, err
}

// backuper is the store's online backup, nil when the backend has none.
func backuper(s tokenize.Store) tokenize.Backuper {
	if b, ok := s.(tokenize.Backuper); ok {
		return b
	}
	return nil
}

// readerNodeID names a short-lived process that opens the map's etcd
// store only to read (an audit verify) while this host's node may be
// serving under the configured node_id: <node>-<what>-<pid>.
func readerNodeID(configured, what string) string {
	node := configured
	if node == "" {
		node, _ = os.Hostname()
	}
	return fmt.Sprintf("%s-%s-%d", node, what, os.Getpid())
}
