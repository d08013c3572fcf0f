package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenproxy/tokenproxy/smtp"
)

// registerCertMetrics exposes the expiry of every certificate a listener
// serves: both routes', and the admin listener's when it speaks TLS
// (adminCert nil: plain HTTP on loopback).
func registerCertMetrics(reg prometheus.Registerer, rs *routes, adminCert *smtp.CertStore) {
	for i, c := range rs.certs {
		reg.MustRegister(c.ExpiryGauge([]string{smtp.RouteInbound, smtp.RouteOutbound}[i]))
	}
	if adminCert != nil {
		reg.MustRegister(adminCert.ExpiryGauge("admin"))
	}
}
