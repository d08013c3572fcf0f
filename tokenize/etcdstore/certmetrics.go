package etcdstore

import (
	"crypto/tls"

	"github.com/prometheus/client_golang/prometheus"
)

// clientCertGauge is the expiry of the client certificate the store
// presents to etcd (mTLS), as Unix time; nil without one. The certificate
// is read once at start: when it expires, the members refuse the node and
// new senders get 451 until a restart with a renewed one, so operators
// need the date ahead of time (deploy/monitoring alerts on it).
func clientCertGauge(tc *tls.Config) prometheus.Collector {
	if tc == nil || len(tc.Certificates) == 0 || tc.Certificates[0].Leaf == nil {
		return nil
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tokenproxy_tls_client_certificate_expiry_timestamp_seconds",
		Help:        "Unix time the client certificate the proxy presents to a peer expires (NotAfter), by peer: etcd. Read at start.",
		ConstLabels: prometheus.Labels{"peer": "etcd"},
	})
	g.Set(float64(tc.Certificates[0].Leaf.NotAfter.Unix()))
	return g
}
