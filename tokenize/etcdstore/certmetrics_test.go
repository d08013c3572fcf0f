package etcdstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClientCertGauge: the gauge exists only for a client certificate,
// and shows its NotAfter.
func TestClientCertGauge(t *testing.T) {
	notAfter := time.Now().Add(40 * 24 * time.Hour).Truncate(time.Second)
	leaf := selfSignedLeaf(t, notAfter)
	tests := []struct {
		name string
		tc   *tls.Config
		want float64 // 0: no gauge
	}{
		{"no TLS", nil, 0},
		{"TLS without a client certificate", &tls.Config{}, 0},
		{"certificate not parsed", &tls.Config{Certificates: []tls.Certificate{{}}}, 0},
		{"client certificate", &tls.Config{Certificates: []tls.Certificate{{Leaf: leaf}}}, float64(notAfter.Unix())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clientCertGauge(tt.tc)
			if (c == nil) != (tt.want == 0) {
				t.Fatalf("gauge %v, want one: %v", c, tt.want != 0)
			}
			if c == nil {
				return
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			if got := testutil.ToFloat64(c); got != tt.want {
				t.Errorf("expiry %v, want %v", got, tt.want)
			}
			if n := testutil.CollectAndCount(c, "tokenproxy_tls_client_certificate_expiry_timestamp_seconds"); n != 1 {
				t.Errorf("%d series, want 1", n)
			}
		})
	}
}

func selfSignedLeaf(t *testing.T, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node-a"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
