package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestWorstMemory(t *testing.T) {
	tests := []struct {
		name         string
		mutate       func(*policy.Config)
		machine      int64
		wantMiB      int64
		wantSessions int
		wantWarning  bool
	}{
		// A session: 3 MiB, and an attachment opened at the attachment
		// limits: 6 x 64 MiB expanded (defaults), or 10 x max_bytes.
		{"defaults", func(*policy.Config) {}, 256 << 30, 400*(3+384) + 2*64*10, 400, false},
		{"defaults on a 24 GiB machine", func(*policy.Config) {}, 24 << 30, 400*(3+384) + 2*64*10, 400, true},
		{"route limits", func(c *policy.Config) { c.Inbound.MaxConnections, c.Outbound.MaxConnections = 50, 10 },
			24 << 30, 60*(3+384) + 2*64*10, 60, false},
		{"attachment limits", func(c *policy.Config) {
			c.Rewrite.Attachments.Limits.MaxExpandedBytes, c.Rewrite.Attachments.Limits.MaxBytes = 8<<20, 4<<20
		}, 24 << 30, 400*(3+48) + 2*64*10, 400, false},
		{"attachments that barely expand", func(c *policy.Config) {
			c.Rewrite.Attachments.Limits.MaxExpandedBytes, c.Rewrite.Attachments.Limits.MaxBytes = 16<<20, 64<<20
		}, 24 << 30, 400*(3+640) + 2*64*10, 400, true},
		{"machine unknown", func(c *policy.Config) { c.SMTP.MaxConnections = 100000 }, 0, 200000*(3+384) + 2*64*10, 200000, false},
	}
	for _, tt := range tests {
		cfg := policy.Defaults()
		tt.mutate(&cfg)
		e := worstMemory(&cfg)
		if e.total>>20 != tt.wantMiB || e.sessions != tt.wantSessions {
			t.Errorf("%s: %d MiB for %d sessions, want %d MiB for %d", tt.name, e.total>>20, e.sessions, tt.wantMiB, tt.wantSessions)
		}
		var out, warn bytes.Buffer
		reportMemory(&out, &warn, &cfg, tt.machine)
		if !strings.HasPrefix(out.String(), "# memory, worst case: about ") {
			t.Errorf("%s: report %q", tt.name, out.String())
		}
		if got := strings.Contains(warn.String(), "warning: the worst case"); got != tt.wantWarning {
			t.Errorf("%s: warning %q, want one: %v", tt.name, warn.String(), tt.wantWarning)
		}
	}
}

// check-config states the worst case with the configuration it prints.
func TestCheckConfigStatesMemory(t *testing.T) {
	c := newCLI(t)
	code, out, _ := c.run("check-config")
	if code != 0 || !strings.Contains(out, "# memory, worst case: about 156080 MiB (400 sessions x 387 MiB, of which 384 MiB for an attachment") ||
		!strings.Contains(out, "max_held_bytes: 67108864") {
		t.Fatalf("check-config on the quickstart: exit %d\n%s", code, out)
	}
}
