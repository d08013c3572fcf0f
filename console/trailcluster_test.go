package console

import (
	"net/url"
	"testing"

	"github.com/tokenproxy/tokenproxy/compliance"
)

// TestParseAt reads the per-node positions of a cluster's trail page and
// refuses anything but node:seq pairs; urlAt writes what parseAt reads.
func TestParseAt(t *testing.T) {
	tests := []struct {
		in   []string
		want compliance.PageCursor
		ok   bool
	}{
		{nil, compliance.PageCursor{}, true},
		{[]string{"node-a:12", "node-b:3"}, compliance.PageCursor{"node-a": 12, "node-b": 3}, true},
		{[]string{"host:8:40"}, compliance.PageCursor{"host:8": 40}, true},
		{[]string{"node-a"}, nil, false},
		{[]string{":12"}, nil, false},
		{[]string{"node-a:x"}, nil, false},
		{[]string{"node-a:-1"}, nil, false},
		{[]string{"jane@example.com:1"}, nil, false},
	}
	for _, tc := range tests {
		got, ok := parseAt(tc.in)
		if ok != tc.ok || len(got) != len(tc.want) {
			t.Errorf("parseAt(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parseAt(%q)[%s] = %d, want %d", tc.in, k, got[k], v)
			}
		}
	}
	at := compliance.PageCursor{"node-b": 3, "node-a": 12}
	u, err := url.Parse(string(trailFilter{Event: "token.created"}.urlAt("/console/audit", at)))
	if err != nil {
		t.Fatal(err)
	}
	back, ok := parseAt(u.Query()["at"])
	if !ok || len(back) != 2 || back["node-a"] != 12 || back["node-b"] != 3 || u.Query().Get("event") != "token.created" {
		t.Errorf("urlAt = %s, read back as %v", u, back)
	}
}
