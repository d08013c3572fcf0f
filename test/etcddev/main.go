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
	flag.Parse()

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
// be on loopback: this member has no authentication and no TLS.
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
	return cfg, nil
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
