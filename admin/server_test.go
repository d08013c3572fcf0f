package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/smtp"
	"github.com/tokenproxy/tokenproxy/test/logbuf"
)

// startAdmin starts an admin server on 127.0.0.1:0 and shuts it down at the
// end of the test.
func startAdmin(t *testing.T, g prometheus.Gatherer, ready func() error, log *slog.Logger) *Server {
	t.Helper()
	if g == nil {
		g = prometheus.NewRegistry()
	}
	s := New("127.0.0.1:0", g, ready, log)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

var adminClient = &http.Client{Timeout: 10 * time.Second}

func adminDo(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestAdminHealthz(t *testing.T) {
	s := startAdmin(t, nil, func() error { return errors.New("down") }, nil)
	// Liveness does not depend on readiness.
	code, h, body := adminDo(t, "GET", "http://"+s.Addr()+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if code, _, _ := adminDo(t, "HEAD", "http://"+s.Addr()+"/healthz"); code != http.StatusOK {
		t.Errorf("HEAD /healthz = %d, want 200", code)
	}
}

func TestAdminReadyz(t *testing.T) {
	// The cause names an address and a secret path: it must reach the log
	// but never the HTTP client.
	const cause = "vault: dial tcp 10.9.8.7:8200: connection refused (secret/data/tokenproxy)"
	var down atomic.Bool
	down.Store(true)
	ready := func() error {
		if down.Load() {
			return errors.New(cause)
		}
		return nil
	}
	logs := &logbuf.Buffer{}
	s := startAdmin(t, nil, ready, slog.New(slog.NewTextHandler(logs, nil)))
	url := "http://" + s.Addr() + "/readyz"

	for range 3 {
		code, _, body := adminDo(t, "GET", url)
		if code != http.StatusServiceUnavailable || body != "not ready\n" {
			t.Errorf("GET /readyz (not ready) = %d %q, want 503 \"not ready\\n\"", code, body)
		}
		if strings.Contains(body, "10.9.8.7") || strings.Contains(body, "secret") {
			t.Errorf("readyz body leaks the cause: %q", body)
		}
	}
	if n := strings.Count(logs.String(), "10.9.8.7"); n != 1 {
		t.Errorf("cause logged %d times over 3 failing polls, want once (on the transition):\n%s", n, logs)
	}

	down.Store(false)
	code, _, body := adminDo(t, "GET", url)
	if code != http.StatusOK || body != "ready\n" {
		t.Errorf("GET /readyz (ready) = %d %q, want 200 \"ready\\n\"", code, body)
	}
	if !strings.Contains(logs.String(), "ready again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

func TestAdminReadyzNilReady(t *testing.T) {
	s := startAdmin(t, nil, nil, nil)
	if code, _, body := adminDo(t, "GET", "http://"+s.Addr()+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("GET /readyz with nil ready = %d %q, want 200 ready", code, body)
	}
}

func TestAdminMetrics(t *testing.T) {
	reg := NewRegistry()
	m := smtp.NewMetrics(reg)
	m.Message("inbound", "relayed")
	m.TokensCreated(2)

	s := startAdmin(t, reg, nil, nil)
	code, h, body := adminDo(t, "GET", "http://"+s.Addr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200\n%s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the text exposition format", ct)
	}
	for _, want := range []string{
		`tokenproxy_messages_total{result="relayed",route="inbound"} 1`,
		`tokenproxy_messages_total{result="refused_leak",route="outbound"} 0`,
		"tokenproxy_tokens_created_total 2",
		"# HELP tokenproxy_messages_total ",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNewRegistryCollectors(t *testing.T) {
	families, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if !names[want] {
			t.Errorf("registry lacks %s", want)
		}
	}
}

func TestAdminNotFound(t *testing.T) {
	s := startAdmin(t, nil, nil, nil)
	for _, path := range []string{"/", "/foo", "/healthz/", "/metrics/x", "/debug/pprof/"} {
		code, _, body := adminDo(t, "GET", "http://"+s.Addr()+path)
		if code != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", path, code, body)
		}
	}
	if code, _, _ := adminDo(t, "POST", "http://"+s.Addr()+"/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", code)
	}
}

func TestAdminLimits(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, nil)
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.WriteTimeout <= 0 || s.srv.IdleTimeout <= 0 {
		t.Errorf("a timeout is unset: %+v", s.srv)
	}
	if s.srv.MaxHeaderBytes <= 0 || s.srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want small and set", s.srv.MaxHeaderBytes)
	}

	s = startAdmin(t, nil, nil, nil)
	req, err := http.NewRequest("GET", "http://"+s.Addr()+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: status %d, want 431", resp.StatusCode)
	}
}

func TestAdminStartErrors(t *testing.T) {
	s := New("127.0.0.1:notaport", prometheus.NewRegistry(), nil, nil)
	err := s.Start()
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
		t.Errorf("Start on a bad address: err = %v, want one naming the address", err)
	}

	first := startAdmin(t, nil, nil, nil)
	busy := New(first.Addr(), prometheus.NewRegistry(), nil, nil)
	err = busy.Start()
	if err == nil || !strings.Contains(err.Error(), first.Addr()) {
		t.Errorf("Start on a busy address: err = %v, want one naming the address", err)
	}
	if err := first.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestAdminShutdown(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, nil)
	if s.Addr() != "" {
		t.Errorf("Addr before Start = %q, want empty", s.Addr())
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if code, _, _ := adminDo(t, "GET", "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz before shutdown = %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	adminClient.CloseIdleConnections()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Shutdown", addr)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
