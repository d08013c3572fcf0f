package smtp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// CertExpiryName is the metric of a listener certificate's expiry.
const CertExpiryName = "tokenproxy_tls_certificate_expiry_timestamp_seconds"

// ExpiryGauge returns a gauge of the current certificate's NotAfter, as
// Unix time, labelled listener (inbound, outbound, admin). It reads the
// certificate in use at each scrape, so a SIGHUP that installs a renewed
// certificate moves it at once, and a failed reload leaves the old date:
// the alert keeps firing until a valid certificate is in use.
func (c *CertStore) ExpiryGauge(listener string) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        CertExpiryName,
		Help:        "Unix time the TLS certificate a listener serves expires (NotAfter), by listener: inbound, outbound, admin.",
		ConstLabels: prometheus.Labels{"listener": listener},
	}, func() float64 {
		return float64(c.Leaf().NotAfter.Unix())
	})
}
