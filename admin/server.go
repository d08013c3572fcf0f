package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin listener limits. The admin port serves probes and scrapes only, so
// everything is small and short: a slow or hostile client cannot hold a
// connection or make us buffer much.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 8 << 10
	// scrapeTimeout bounds one /metrics gathering; it is below
	// writeTimeout so the scraper gets a 503 rather than a cut reply.
	scrapeTimeout = 20 * time.Second
	// scrapesInFlight bounds concurrent /metrics requests.
	scrapesInFlight = 4
)

// Server serves /healthz (200 "ok" while the process runs), /readyz (200
// "ready" when ready() returns nil, else 503 "not ready" — the cause goes to
// the log, never to the client, as it may name an address or a secret's
// path), and /metrics. Everything else is 404 (405 for a known path with a
// method other than GET or HEAD), plus what is mounted with Handle.
type Server struct {
	listen string
	log    *slog.Logger
	srv    *http.Server

	mux *http.ServeMux
	tls *tls.Config // nil: plain HTTP

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{} // closed when the serving goroutine returns

	ready    func() error
	notReady atomic.Bool // last /readyz answer was 503; logs only state changes
}

// New builds the admin server on listen (host:port). gatherer is
// what /metrics exposes. ready is called on every /readyz request, so it must
// be quick and safe for concurrent use; nil means always ready. log may be nil.
func New(listen string, gatherer prometheus.Gatherer, ready func() error, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func() error { return nil }
	}
	mux := http.NewServeMux()
	s := &Server{listen: listen, log: log, ready: ready, mux: mux}

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError, // a broken collector must not hide the rest
		MaxRequestsInFlight: scrapesInFlight,
		Timeout:             scrapeTimeout,
	}))

	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// ServeTLS makes Start serve HTTPS with cfg; call it before Start.
func (s *Server) ServeTLS(cfg *tls.Config) { s.tls = cfg }

// Handle mounts h on pattern (http.ServeMux syntax), beside the probes:
// the compliance API mounts itself so. Call it before Start.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Start listens, so that a bad or busy address fails here rather than in the
// background, then serves in a goroutine until Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return fmt.Errorf("admin listener %s: already started", s.listen)
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", s.listen, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go s.serve(ln, s.done)
	s.log.Info("admin listener started", "addr", ln.Addr().String())
	return nil
}

func (s *Server) serve(ln net.Listener, done chan struct{}) {
	defer close(done)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("admin listener panicked", "panic", r)
		}
	}()
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("admin listener stopped", "err", err)
	}
}

// Addr is the address actually listened on (useful with port 0), or "" before
// Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends
// (then closes what is left), and waits for the serving goroutine. It is a
// no-op before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close() // ctx ended first: drop the slow requests
	}
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writePlain(w, http.StatusOK, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.ready(); err != nil {
		// Probes poll every few seconds: log the transition, not every poll.
		if !s.notReady.Swap(true) {
			s.log.Warn("not ready", "err", err)
		}
		writePlain(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	if s.notReady.Swap(false) {
		s.log.Info("ready again")
	}
	writePlain(w, http.StatusOK, "ready\n")
}

func writePlain(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// NewRegistry returns the registry for the proxy's metrics, with the Go
// runtime and process collectors already registered. It is a fresh registry,
// not prometheus.DefaultRegisterer, so nothing registers on it by accident
// (STYLE.md: no package-level mutable globals).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
