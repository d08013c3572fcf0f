package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/tokenize"
)

// registerMapMetrics exposes the token map's known-address cache counts:
// its hit rate says how much of the inbound route avoids the store, which
// on etcd is a quorum round. The map keeps plain counters; no label.
func registerMapMetrics(reg prometheus.Registerer, m *tokenize.Map) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokenproxy_known_cache_hits_total",
			Help: "Tokenize calls answered from the known-address cache.",
		}, func() float64 {
			hits, _ := m.KnownCacheStats()
			return float64(hits)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokenproxy_known_cache_misses_total",
			Help: "Tokenize calls that looked the address up in the store (unknown, or the cache was unusable while the store was stale).",
		}, func() float64 {
			_, misses := m.KnownCacheStats()
			return float64(misses)
		}),
	)
}
