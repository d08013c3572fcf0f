package smtp

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenproxy/tokenproxy/mailauth"
)

// TestInboundARCMetrics: tokenproxy_arc_results_total counts each chain
// the inbound route verified by result, tokenproxy_arc_seals_total each
// seal by how it was made, or that it failed; their labels hold results
// only, never a domain or an address.
func TestInboundARCMetrics(t *testing.T) {
	z, forwarded := arcDNS(t)
	h := arcHarness(t, z.Addr, []string{"gw.example"}, false)
	// A trusted chain: verified pass, our set continues it (i=2).
	if r := sendInbound(h, "bob.roe@example.org", forwarded(gwResults)); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	// The gateway's results name the customer: rewriting changes its set,
	// so the old sets are replaced by a new chain.
	if r := sendInbound(h, "bob.roe@example.org", forwarded("gw.example; spf=pass smtp.mailfrom=bob.roe@example.org; dkim=pass header.d=example.org")); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	// No chain, and DMARC refuses it (p=reject): verified, never sealed.
	if r := sendInbound(h, "bob.roe@example.org", dmarcFailMsg); !strings.HasPrefix(r, "550 5.7.1") {
		t.Fatalf("DATA: %s", r)
	}
	// A chain whose seal was broken on the way: fail, continued cv=fail.
	broken := strings.Replace(forwarded(gwResults), "Subject: [EXTERNAL] hello", "Subject: [EXTERNAL] hallo", 1)
	tagged := arcHarness(t, z.Addr, nil, true)
	if r := sendInbound(tagged, "bob.roe@example.org", broken); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	// A seal that cannot be made: 451, counted failed.
	down := authHarness(t, z.Addr, func(o *harnessOpts) {
		o.auth.TrustedARCSealers = []string{"gw.example"}
		o.auth.ARCSeal = &mailauth.ARCSealer{Domain: "company.example", Selector: "arc1", Key: failingSigner{arcTestKey(t)}}
	})
	if r := sendInbound(down, "bob.roe@example.org", forwarded(gwResults)); !strings.HasPrefix(r, "451 4.3.0") {
		t.Fatalf("DATA: %s", r)
	}
	for _, tc := range []struct {
		name  string
		h     *harness
		c     *prometheus.CounterVec
		label string
		want  float64
	}{
		{"results pass", h, h.met.arc.results, "pass", 2},
		{"results none", h, h.met.arc.results, "none", 1},
		{"seals extended", h, h.met.arc.seals, "extended", 1},
		{"seals replaced", h, h.met.arc.seals, "replaced", 1},
		{"seals new", h, h.met.arc.seals, "new", 0},
		{"results fail", tagged, tagged.met.arc.results, "fail", 1},
		{"seals extended over a failed chain (cv=fail)", tagged, tagged.met.arc.seals, "extended", 1},
		{"seals failed", down, down.met.arc.seals, "failed", 1},
		{"seals failed, none made", down, down.met.arc.seals, "new", 0},
	} {
		if got := testutil.ToFloat64(tc.c.WithLabelValues(tc.label)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Every series is there from the start, and no other label value.
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if strings.HasPrefix(f.GetName(), "tokenproxy_arc_") {
				series[f.GetName()]++
				if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "result" {
					t.Errorf("%s: labels %v", f.GetName(), m.GetLabel())
				}
			}
		}
	}
	if series["tokenproxy_arc_results_total"] != 4 || series["tokenproxy_arc_seals_total"] != 4 {
		t.Errorf("series at start: %v", series)
	}
}
