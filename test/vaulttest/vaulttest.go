// Package vaulttest starts real HashiCorp Vault servers for integration
// tests.
//
// The server is the program in test/vaultdev (Vault's core on in-memory
// storage, initialized and unsealed, with transit/ and auth/approle already
// mounted and the "file" audit device available). It is built once per
// version of its source into the user cache directory. The first build
// downloads Vault's modules (~2.8 GB module cache) and compiles for 5-10
// minutes. Building in TestMain (StartMain) does not count against go test's
// -timeout, which starts with m.Run, but the go command still kills a test
// binary at timeout+1m; Start in a test counts fully. On a fresh machine run
// `go test -timeout 30m` once.
package vaulttest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/test/devbin"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
)

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a running Vault dev server.
type Server struct {
	Addr       string // e.g. "http://127.0.0.1:41234" or "https://…"
	RootToken  string
	CACertFile string // PEM file of the CA that signed the server certificate; "" without TLS

	cmd    *exec.Cmd
	stdin  io.Closer // kept open: the server exits when it is closed
	stderr logbuf.Buffer
	dir    string
	exited chan struct{} // closed once the process has exited
	err    error         // result of cmd.Wait, valid after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Option configures Start and StartMain.
type Option func(*options)

type options struct{ tls bool }

// WithTLS serves HTTPS with a freshly generated CA; see Server.CACertFile.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// Start builds the server if needed and starts one on a free loopback port.
// It is stopped when the test and its subtests finish; Vault's log is added
// to the test log if the test failed.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := start(Binary(tb), opts)
	if err != nil {
		tb.Fatalf("vaulttest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("vaulttest: %v", err)
		}
		if tb.Failed() {
			tb.Logf("vault stderr:\n%s", s.Logs())
		}
	})
	return s
}

// Main runs a package's tests with one shared server stored in *shared:
//
//	func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m, &shared)) }
func Main(m *testing.M, shared **Server, opts ...Option) int {
	s, stop, err := StartMain(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vaulttest:", err)
		return 1
	}
	*shared = s
	defer stop()
	return m.Run()
}

// StartMain is Start for TestMain, where no testing.TB exists: one server
// shared by a whole package. Call stop before os.Exit; it reports problems,
// with Vault's log, on stderr.
func StartMain(opts ...Option) (s *Server, stop func(), err error) {
	bin, err := build(func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "vaulttest: "+format+"\n", args...)
	})
	if err != nil {
		return nil, nil, err
	}
	if s, err = start(bin, opts); err != nil {
		return nil, nil, err
	}
	return s, func() {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "vaulttest: %v\nvault stderr:\n%s", err, s.Logs())
		}
	}, nil
}

// Binary returns the path of the vaultdev binary, building it if needed.
func Binary(tb testing.TB) string {
	tb.Helper()
	bin, err := build(func(format string, args ...any) { tb.Logf("vaulttest: "+format, args...) })
	if err != nil {
		tb.Fatalf("vaulttest: %v", err)
	}
	return bin
}

// Stop shuts the server down with SIGTERM and waits for it to exit
// (killing it if that takes too long). Further calls do nothing.
func (s *Server) Stop() { s.stop() }

// Kill kills the server with SIGKILL and waits for it to exit, to test what
// happens when Vault disappears.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.exited
	s.stop()
}

// Logs returns what the server has written to stderr so far.
func (s *Server) Logs() string { return s.stderr.String() }

// Env returns VAULT_ADDR, VAULT_TOKEN and, with TLS, VAULT_CACERT settings
// for processes under test.
func (s *Server) Env() []string {
	env := []string{"VAULT_ADDR=" + s.Addr, "VAULT_TOKEN=" + s.RootToken}
	if s.CACertFile != "" {
		env = append(env, "VAULT_CACERT="+s.CACertFile)
	}
	return env
}

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client {
	if s.CACertFile == "" {
		return &http.Client{Timeout: 30 * time.Second}
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(s.CACertFile); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

func start(bin string, opts []Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dir, err := os.MkdirTemp("", "vaulttest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exited: make(chan struct{})}
	args := []string{"-listen", "127.0.0.1:0", "-exit-with-stdin"}
	if o.tls {
		args = append(args, "-tls-dir", dir)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = &s.stderr
	stdout := newReadyWriter()
	s.cmd.Stdout = stdout
	// Holding the write end of its stdin lets the server notice when this
	// process dies, even by SIGKILL or a test timeout, and exit too.
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()

	select {
	case <-stdout.ready:
	case <-s.exited:
		s.stop()
		return nil, fmt.Errorf("vault exited before it was ready (%v); stderr:\n%s", s.err, s.Logs())
	case <-time.After(startTimeout):
		s.Kill()
		return nil, fmt.Errorf("vault not ready after %v; stderr:\n%s", startTimeout, s.Logs())
	}
	s.Addr, s.RootToken = stdout.vars["VAULT_ADDR"], stdout.vars["VAULT_TOKEN"]
	if o.tls {
		s.CACertFile = filepath.Join(dir, "ca.pem")
	}
	return s, nil
}

// stop stops the server once and reports an exit other than the one asked
// for (so a crash during the test is not missed).
func (s *Server) stop() error {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited: // already gone: crashed, or Kill
			if s.err != nil && !killed(s.err) {
				s.stopErr = fmt.Errorf("vault exited during the test: %v", s.err)
			}
		default:
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
				if s.err != nil {
					s.stopErr = fmt.Errorf("vault did not stop cleanly: %v", s.err)
				}
			case <-time.After(stopTimeout):
				s.cmd.Process.Kill()
				<-s.exited
				s.stopErr = fmt.Errorf("vault did not stop within %v of SIGTERM; killed", stopTimeout)
			}
		}
		s.stdin.Close()
		os.RemoveAll(s.dir)
	})
	return s.stopErr
}

func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// readyWriter collects the server's stdout and signals once both lines
// VAULT_ADDR=… and VAULT_TOKEN=… have been printed.
type readyWriter struct {
	buf   []byte
	vars  map[string]string
	ready chan struct{}
	done  bool
}

func newReadyWriter() *readyWriter {
	return &readyWriter{vars: map[string]string{}, ready: make(chan struct{})}
}

// Write is only called from the one goroutine exec uses to copy stdout, and
// vars is only read after ready is closed and no longer written, so no lock
// is needed.
func (w *readyWriter) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		line, rest, ok := bytes.Cut(w.buf, []byte("\n"))
		if !ok {
			break
		}
		w.buf = rest
		if k, v, ok := strings.Cut(strings.TrimSpace(string(line)), "="); ok {
			w.vars[k] = v
		}
	}
	if w.vars["VAULT_ADDR"] != "" && w.vars["VAULT_TOKEN"] != "" {
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

// build returns the cached vaultdev binary for the current source, building
// it first if needed. Concurrent test processes (go test ./...) coordinate
// through a file lock, so only one of them builds.
func build(logf func(format string, args ...any)) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtBin != "" || buildErr != nil {
		return builtBin, buildErr
	}
	builtBin, buildErr = buildLocked(logf)
	return builtBin, buildErr
}

func buildLocked(logf func(format string, args ...any)) (string, error) {
	return devbin.Build(logf, "vaultdev", "vaultdev", ".", "minutes")
}
