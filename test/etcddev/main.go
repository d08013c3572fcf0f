// Command etcddev runs one real etcd member (go.etcd.io/etcd/server/v3
// through its embed package) for tests. test/etcdtest starts three of
// them on loopback ports to form a cluster.
//
// It lives in its own module so etcd's server dependencies stay out of the
// project's go.mod; the project itself only needs the client.
//
// Once the member serves clients (which needs a quorum: start the members
// of a new cluster together) it prints exactly one line on stdout:
//
//	ETCD_READY=http://127.0.0.1:PORT
//
// and serves until SIGINT or SIGTERM (or, with -exit-with-stdin, until
// stdin is closed).
//
// With -cert-file and -key-file it serves clients over TLS (https URLs),
// with -trusted-ca-file and -client-cert-auth it requires client
// certificates from that CA (etcd then takes a certificate's CN as the
// user name when auth is enabled), and with -peer-cert-file and
// -peer-key-file its peers talk TLS too. -snapshot-count and -max-wals
// set when the member writes raft snapshots and how many WAL files it
// keeps, so tests can observe what survives in them.
//
// -check-config FILE parses an etcd configuration file (etcd.conf.yml)
// with etcd's own loader and validates it, printing CONFIG_OK, without
// starting anything: deploy/etcd's examples are checked this way.
//
// The module also pins etcdctl (a go.mod tool), so test/etcdtest builds
// the etcdctl of the same release from the same go.sum.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// readyTimeout bounds the wait for a quorum: a cluster whose other members
// never come up is a broken test setup, not something to wait for forever.
const readyTimeout = 60 * time.Second

type flags struct {
	name, dataDir, clientURL, peerURL string
	cluster, state, token, logLevel   string
	heartbeatMs, electionMs           uint
	exitWithStdin                     bool

	certFile, keyFile, trustedCAFile         string
	clientCertAuth                           bool
	peerCertFile, peerKeyFile, peerTrustedCA string
	snapshotCount                            uint64
	maxWals                                  uint
	checkConfig                              string
}

func main() {
	var f flags
	flag.StringVar(&f.name, "name", "m0", "member `name`")
	flag.StringVar(&f.dataDir, "data-dir", "", "member data `dir` (required)")
	flag.StringVar(&f.clientURL, "client-url", "http://127.0.0.1:2379", "loopback `URL` to serve clients on")
	flag.StringVar(&f.peerURL, "peer-url", "http://127.0.0.1:2380", "loopback `URL` to serve peers on")
	flag.StringVar(&f.cluster, "initial-cluster", "", "`name=peerURL,…` of every member (default: this one alone)")
	flag.StringVar(&f.state, "initial-cluster-state", "new", "`new` or existing")
	flag.StringVar(&f.token, "initial-cluster-token", "etcddev", "cluster `token`")
	flag.StringVar(&f.logLevel, "log-level", "warn", "etcd log `level` (written to stderr)")
	flag.UintVar(&f.heartbeatMs, "heartbeat-ms", 100, "heartbeat interval in `ms`")
	flag.UintVar(&f.electionMs, "election-ms", 1000, "election timeout in `ms`")
	flag.BoolVar(&f.exitWithStdin, "exit-with-stdin", false, "also stop when stdin reaches EOF")
	flag.StringVar(&f.certFile, "cert-file", "", "server certificate `file` for clients (PEM; https client URLs)")
	flag.StringVar(&f.keyFile, "key-file", "", "its key `file`")
	flag.StringVar(&f.trustedCAFile, "trusted-ca-file", "", "CA `file` that client certificates must chain to")
	flag.BoolVar(&f.clientCertAuth, "client-cert-auth", false, "require a client certificate from -trusted-ca-file")
	flag.StringVar(&f.peerCertFile, "peer-cert-file", "", "certificate `file` for peers (served and presented; https peer URLs)")
	flag.StringVar(&f.peerKeyFile, "peer-key-file", "", "its key `file`")
	flag.StringVar(&f.peerTrustedCA, "peer-trusted-ca-file", "", "CA `file` that peer certificates must chain to (required with -peer-cert-file)")
	flag.Uint64Var(&f.snapshotCount, "snapshot-count", 0, "committed entries between raft snapshots (0: etcd's default)")
	flag.UintVar(&f.maxWals, "max-wals", 0, "WAL files kept (0: etcd's default)")
	flag.StringVar(&f.checkConfig, "check-config", "", "only parse and validate the etcd configuration `file`")
	flag.Parse()
	if f.checkConfig != "" {
		if err := checkConfigFile(f.checkConfig); err != nil {
			fmt.Fprintln(os.Stderr, "etcddev:", err)
			os.Exit(1)
		}
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.exitWithStdin {
		// A parent that keeps our stdin pipe open gets us stopped even if
		// it dies without signalling (a go test timeout, SIGKILL).
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	if err := run(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "etcddev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	cfg, err := config(f)
	if err != nil {
		return err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return nil
	case <-time.After(readyTimeout):
		return errors.New("no quorum after " + readyTimeout.String())
	}
	fmt.Printf("ETCD_READY=%s\n", f.clientURL)
	select {
	case err := <-e.Err():
		return err
	case <-ctx.Done():
		return nil
	}
}

// config builds the member's configuration from the flags. Every URL must
// be on loopback: this member is for tests, whatever its TLS.
func config(f flags) (*embed.Config, error) {
	if f.dataDir == "" {
		return nil, errors.New("-data-dir is required")
	}
	client, err := loopbackURL(f.clientURL)
	if err != nil {
		return nil, fmt.Errorf("-client-url: %w", err)
	}
	peer, err := loopbackURL(f.peerURL)
	if err != nil {
		return nil, fmt.Errorf("-peer-url: %w", err)
	}
	if f.cluster == "" {
		f.cluster = f.name + "=" + f.peerURL
	}
	for _, m := range strings.Split(f.cluster, ",") {
		_, u, _ := strings.Cut(m, "=")
		if _, err := loopbackURL(u); err != nil {
			return nil, fmt.Errorf("-initial-cluster %s: %w", m, err)
		}
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = f.name, f.dataDir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster, cfg.ClusterState, cfg.InitialClusterToken = f.cluster, f.state, f.token
	cfg.TickMs, cfg.ElectionMs = f.heartbeatMs, f.electionMs
	cfg.LogLevel = f.logLevel
	cfg.LogOutputs = []string{"stderr"}
	if f.snapshotCount > 0 {
		cfg.SnapshotCount = f.snapshotCount
		// A snapshot lets the raft log be compacted up to this many entries
		// behind it; keep it below the count or nothing is ever released.
		cfg.SnapshotCatchUpEntries = min(cfg.SnapshotCatchUpEntries, f.snapshotCount)
	}
	if f.maxWals > 0 {
		cfg.MaxWalFiles = f.maxWals
	}
	if err := tlsConfig(cfg, f); err != nil {
		return nil, err
	}
	return cfg, nil
}

// tlsConfig sets the member's client and peer TLS from the flags. A URL's
// scheme must match: https exactly when TLS is configured for it.
func tlsConfig(cfg *embed.Config, f flags) error {
	if (f.certFile == "") != (f.keyFile == "") || (f.peerCertFile == "") != (f.peerKeyFile == "") {
		return errors.New("set a certificate and its key together")
	}
	if f.clientCertAuth && f.trustedCAFile == "" {
		return errors.New("-client-cert-auth needs -trusted-ca-file")
	}
	if f.peerCertFile != "" && f.peerTrustedCA == "" {
		return errors.New("-peer-cert-file needs -peer-trusted-ca-file: peers authenticate each other")
	}
	if err := schemeMatches("-client-url", f.clientURL, f.certFile != ""); err != nil {
		return err
	}
	if err := schemeMatches("-peer-url", f.peerURL, f.peerCertFile != ""); err != nil {
		return err
	}
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = f.certFile, f.keyFile
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = f.trustedCAFile, f.clientCertAuth
	cfg.ClientAutoTLS = false
	cfg.PeerTLSInfo.CertFile, cfg.PeerTLSInfo.KeyFile = f.peerCertFile, f.peerKeyFile
	cfg.PeerTLSInfo.TrustedCAFile = f.peerTrustedCA
	cfg.PeerTLSInfo.ClientCertAuth = f.peerCertFile != ""
	return nil
}

func schemeMatches(flagName, rawURL string, tls bool) error {
	want := "http"
	if tls {
		want = "https"
	}
	if u, _ := url.Parse(rawURL); u == nil || u.Scheme != want {
		return fmt.Errorf("%s %s: want an %s URL (TLS configured: %v)", flagName, rawURL, want, tls)
	}
	return nil
}

// checkConfigFile loads an etcd configuration file as etcd --config-file
// does and validates it, without binding anything, then prints the
// settings the deployment depends on as etcd understood them: etcd's
// loader ignores unknown keys, so a misspelt one shows as a default here.
func checkConfigFile(path string) error {
	cfg, err := embed.ConfigFromFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Printf("CONFIG_OK name=%s client-cert-auth=%v client-tls=%v peer-client-cert-auth=%v peer-tls=%v "+
		"auto-compaction=%s/%s quota-backend-bytes=%d max-txn-ops=%d snapshot-count=%d max-wals=%d\n",
		cfg.Name, cfg.ClientTLSInfo.ClientCertAuth, !cfg.ClientTLSInfo.Empty(), cfg.PeerTLSInfo.ClientCertAuth,
		!cfg.PeerTLSInfo.Empty(), cfg.AutoCompactionMode, cfg.AutoCompactionRetention, cfg.QuotaBackendBytes,
		cfg.MaxTxnOps, cfg.SnapshotCount, cfg.MaxWalFiles)
	return nil
}

func loopbackURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() || u.Port() == "" {
		return nil, fmt.Errorf("%s: only loopback IP addresses with a port are allowed", s)
	}
	return u, nil
}
