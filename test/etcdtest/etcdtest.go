// Package etcdtest starts real 3-member etcd clusters on loopback for
// tests.
//
// Each member is the program in test/etcddev (one etcd v3.7 member through
// the server's embed package), built once per version of its source into
// the user cache directory, like test/vaulttest builds Vault. A cold build
// takes about a minute on two cores (plus the module download on a fresh
// machine); later runs start a cluster in one to three seconds. Members
// listen on free 127.0.0.1 ports, keep their data in t.TempDir(), and are
// stopped when the test ends; their logs are added to a failed test's log.
//
// StartWith starts a TLS cluster (Options.TLS): clients and peers talk
// TLS with certificates from a test CA, and clients must present one
// (etcd's client-cert-auth), as deploy/etcd configures production members.
// Etcdctl builds etcdctl of the same etcd release.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/devbin"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	// Size is the number of members of a cluster: the smallest that
	// survives the loss of one.
	Size = 3
)

// Cluster is a running etcd cluster of Size members.
type Cluster struct {
	Members []*Member
	bin     string
	initial string // the -initial-cluster flag every member was started with
	opts    Options
	tlsArgs []string // the members' TLS flags
}

// Options configures StartWith.
type Options struct {
	// TLS, when set, makes the members serve clients and peers over TLS
	// with a certificate from this CA (CN "etcd-member", 127.0.0.1) and
	// require client certificates from it (client-cert-auth). Endpoints
	// are then https URLs and Client connects as CN "root".
	TLS *CA
	// SnapshotCount and MaxWals set the members' --snapshot-count and
	// --max-wals (0: etcd's defaults, 10,000 and 5).
	SnapshotCount uint64
	MaxWals       uint
}

// RootCN is the CN of the certificate Client presents on a TLS cluster:
// etcd maps it to the root user once auth is enabled.
const RootCN = "root"

// Member is one etcd member. Its process can be stopped, killed and
// restarted on the same ports and data.
type Member struct {
	Name      string
	ClientURL string // e.g. "http://127.0.0.1:41234"
	PeerURL   string
	DataDir   string

	mu   sync.Mutex
	proc *process // nil while stopped
	logs logbuf.Buffer
}

// Start builds the member binary if needed and starts a cluster whose
// members are stopped when the test and its subtests finish.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	c := &Cluster{bin: Binary(tb), opts: opts}
	if opts.TLS != nil {
		cert, key := opts.TLS.Issue(tb, "etcd-member")
		ca := opts.TLS.CertFile
		c.tlsArgs = []string{"-cert-file", cert, "-key-file", key, "-trusted-ca-file", ca, "-client-cert-auth",
			"-peer-cert-file", cert, "-peer-key-file", key, "-peer-trusted-ca-file", ca}
	}
	if opts.SnapshotCount > 0 {
		c.tlsArgs = append(c.tlsArgs, "-snapshot-count", strconv.FormatUint(opts.SnapshotCount, 10))
	}
	if opts.MaxWals > 0 {
		c.tlsArgs = append(c.tlsArgs, "-max-wals", strconv.FormatUint(uint64(opts.MaxWals), 10))
	}
	tb.Cleanup(func() {
		for _, m := range c.Members {
			m.Stop()
			if tb.Failed() {
				tb.Logf("etcd member %s log:\n%s", m.Name, m.Logs())
			}
		}
	})
	// A port found free can be taken by another process before etcd binds
	// it (parallel test packages start clusters too): a start that fails
	// is retried on new ports.
	var err error
	for attempt := range startAttempts {
		if err = c.startAll(tb.TempDir()); err == nil {
			return c
		}
		tb.Logf("etcdtest: start attempt %d: %v", attempt+1, err)
		for _, m := range c.Members {
			m.Stop()
		}
	}
	tb.Fatalf("etcdtest: %v", err)
	return nil
}

// startAttempts bounds the retries of a cluster start.
const startAttempts = 3

// startAll starts Size members on new ports in dir. A new member is ready
// only once a quorum has formed, so they start together.
func (c *Cluster) startAll(dir string) error {
	c.Members = nil
	var peers []string
	for i := range Size {
		m := &Member{Name: fmt.Sprintf("m%d", i), DataDir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		client, err := freeAddr()
		if err != nil {
			return err
		}
		peer, err := freeAddr()
		if err != nil {
			return err
		}
		scheme := "http://"
		if c.opts.TLS != nil {
			scheme = "https://"
		}
		m.ClientURL, m.PeerURL = scheme+client, scheme+peer
		peers = append(peers, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	c.initial = strings.Join(peers, ",")
	errs := make(chan error, Size)
	for _, m := range c.Members {
		go func() { errs <- c.start(m) }()
	}
	var first error
	for range Size {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Endpoints returns the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Client returns a client on all members, closed when the test ends. On
// a TLS cluster it presents a certificate with CN RootCN.
func (c *Cluster) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second}
	if c.opts.TLS != nil {
		cfg.TLS = c.opts.TLS.ClientTLS(tb, RootCN)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		tb.Fatalf("etcdtest: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the current leader among the running
// members, waiting up to timeout for one to be elected.
func (c *Cluster) Leader(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	cli := c.Client(tb)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, m := range c.Members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.ClientURL)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("etcdtest: no leader after %v", timeout)
	return -1
}

// Restart starts a stopped or killed member again on its ports and data.
// It returns once the member serves, which needs a quorum.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	m := c.Members[i]
	m.Stop() // in case it still runs
	if err := c.start(m); err != nil {
		tb.Fatalf("etcdtest: restart: %v", err)
	}
}

func (c *Cluster) start(m *Member) error {
	args := []string{
		"-name", m.Name, "-data-dir", m.DataDir,
		"-client-url", m.ClientURL, "-peer-url", m.PeerURL,
		"-initial-cluster", c.initial, "-exit-with-stdin",
	}
	args = append(args, c.tlsArgs...)
	p, err := startProcess(c.bin, args, &m.logs)
	if err != nil {
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	return nil
}

// Stop stops the member with SIGTERM (SIGKILL if it takes longer than
// stopTimeout) and waits for it to exit. A stopped member does nothing.
func (m *Member) Stop() { m.end(syscall.SIGTERM) }

// Kill kills the member with SIGKILL, as a crash would, and waits for it
// to exit.
func (m *Member) Kill() { m.end(syscall.SIGKILL) }

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil
}

// Logs returns what the member wrote to stderr, over all its restarts.
func (m *Member) Logs() string { return m.logs.String() }

func (m *Member) end(sig syscall.Signal) {
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p != nil {
		p.end(sig)
	}
}

// process is one run of a member binary.
type process struct {
	cmd    *exec.Cmd
	stdin  io.Closer // kept open: the member exits when it is closed
	exited chan struct{}
}

func startProcess(bin string, args []string, logs io.Writer) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logs
	ready := newReadyWriter()
	cmd.Stdout = ready
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready.ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("exited before it was ready: %v", waitErr)
	case <-time.After(startTimeout):
		p.end(syscall.SIGKILL)
		return nil, fmt.Errorf("not ready after %v", startTimeout)
	}
}

func (p *process) end(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.stdin.Close()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. etcd needs its peers' ports before any member starts, so port 0
// cannot be used. The port is drawn below Linux's ephemeral range
// (32768-60999), where outgoing connections would compete for it; another
// process taking it in between makes the start fail, and Start retries.
func freeAddr() (string, error) {
	var last error
	for range 50 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port: %w", last)
}

// readyWriter collects a member's stdout and signals once it printed
// ETCD_READY=….
type readyWriter struct {
	buf   []byte
	ready chan struct{}
	done  bool
}

func newReadyWriter() *readyWriter { return &readyWriter{ready: make(chan struct{})} }

// Write is only called from the one goroutine exec uses to copy stdout.
func (w *readyWriter) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, []byte("ETCD_READY=")) && bytes.Contains(w.buf, []byte("\n")) {
		w.done = true
		close(w.ready)
	}
	return len(p), nil
}

var (
	buildMu  sync.Mutex
	builtBin string
	buildErr error
)

// Binary returns the path of the etcddev binary, building it if needed.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBin == "" && buildErr == nil {
		builtBin, buildErr = build(func(format string, args ...any) { tb.Logf("etcdtest: "+format, args...) }, "etcddev", ".")
	}
	if buildErr != nil {
		tb.Fatalf("etcdtest: %v", buildErr)
	}
	return builtBin
}

var (
	ctlMu    sync.Mutex
	builtCtl string
	ctlErr   error
)

// Etcdctl returns the path of an etcdctl of the members' etcd release,
// built (a few seconds once the modules are cached) from the version that
// test/etcddev's go.mod pins as a tool.
func Etcdctl(tb testing.TB) string {
	tb.Helper()
	ctlMu.Lock()
	defer ctlMu.Unlock()
	if builtCtl == "" && ctlErr == nil {
		builtCtl, ctlErr = build(func(format string, args ...any) { tb.Logf("etcdtest: "+format, args...) },
			"etcdctl", "go.etcd.io/etcd/etcdctl/v3")
	}
	if ctlErr != nil {
		tb.Fatalf("etcdtest: %v", ctlErr)
	}
	return builtCtl
}

// build returns the cached binary name-<hash> of pkg (a package of the
// etcddev module or one it requires) for the current source of etcddev.
func build(logf func(format string, args ...any), name, pkg string) (string, error) {
	return devbin.Build(logf, "etcddev", name, pkg, "about a minute for etcddev")
}
