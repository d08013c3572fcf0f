package smtp

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCertExpiryGauge: the gauge shows the NotAfter of the certificate in
// use: a reload that installs a new one moves it, a failed reload leaves it.
func TestCertExpiryGauge(t *testing.T) {
	dir := t.TempDir()
	write := func(validFor time.Duration) time.Time {
		notAfter := time.Now().Add(validFor).Truncate(time.Second)
		certPEM, keyPEM, err := SelfSignedPair([]string{certHost}, notAfter)
		if err != nil {
			t.Fatal(err)
		}
		certWrite(t, dir, "listener", certPEM, keyPEM)
		return notAfter
	}
	first := write(10 * 24 * time.Hour)
	store, err := LoadCert(dir+"/listener.crt", dir+"/listener.key", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	gauge := store.ExpiryGauge("inbound")
	reg.MustRegister(gauge)

	steps := []struct {
		name   string
		change func() time.Time // returns the NotAfter expected after it
	}{
		{"loaded", func() time.Time { return first }},
		{"renewed and reloaded", func() time.Time {
			next := write(90 * 24 * time.Hour)
			if err := store.Reload(); err != nil {
				t.Fatal(err)
			}
			return next
		}},
		{"broken file, reload fails", func() time.Time {
			before := store.Leaf().NotAfter
			certWrite(t, dir, "listener", []byte("garbage"), []byte("garbage"))
			if store.Reload() == nil {
				t.Fatal("reload of garbage succeeded")
			}
			return before
		}},
	}
	for _, s := range steps {
		want := s.change()
		if n := testutil.CollectAndCount(reg, CertExpiryName); n != 1 {
			t.Fatalf("%s: %d series, want 1", s.name, n)
		}
		got := testutil.ToFloat64(gauge)
		if got != float64(want.Unix()) {
			t.Errorf("%s: expiry %v, want %v", s.name, got, want.Unix())
		}
	}
}
