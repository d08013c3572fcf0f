package main

import (
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

// TestPeerURL: the URL a node publishes for the others: store.etcd.admin_url,
// else https://<admin.listen> when it names a host; loopback ones are
// flagged (the node then warns at start).
func TestPeerURL(t *testing.T) {
	cases := []struct {
		listen, adminURL, want string
		loopback               bool
	}{
		{"127.0.0.1:8025", "", "https://127.0.0.1:8025", true},
		{"10.0.0.11:8025", "", "https://10.0.0.11:8025", false},
		{"tp-1.example:8025", "", "https://tp-1.example:8025", false},
		{"0.0.0.0:8025", "", "", false},
		{"[::]:8025", "", "", false},
		{":8025", "", "", false},
		{"0.0.0.0:8025", "https://10.0.0.11:8025", "https://10.0.0.11:8025", false},
		{"127.0.0.1:8025", "https://localhost:9443", "https://localhost:9443", true},
	}
	for _, c := range cases {
		cfg := policy.Defaults()
		cfg.Admin.Listen, cfg.Store.Etcd.AdminURL = c.listen, c.adminURL
		got := peerURL(&cfg)
		if got != c.want || got != "" && loopbackURL(got) != c.loopback {
			t.Errorf("listen %s, admin_url %q: %q (loopback %v), want %q (loopback %v)", c.listen, c.adminURL, got, loopbackURL(got), c.want, c.loopback)
		}
	}
}
