package smtp

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tokenproxy/tokenproxy/smtp/downstream"
)

// The routes' tests relay to a downstreamtest.Sink; these are the
// helpers around it.

// dsTimeout keeps every downstream test short.
const dsTimeout = 300 * time.Millisecond

// newDS returns a client for addr; mutate adjusts the config.
func newDS(t testing.TB, addr string, logger *slog.Logger, mutate func(*downstream.Config)) *downstream.Pool {
	t.Helper()
	cfg := downstream.Config{Address: addr, TLS: downstream.TLSInsecure, HeloName: "proxy.test", Timeout: dsTimeout, PoolSize: 2}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := downstream.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
