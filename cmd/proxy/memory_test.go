package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestWorstMemory(t *testing.T) {
	tests := []struct {
		name           string
		mutate         func(*policy.Config)
		machine        int64
		wantMiB        int64
		wantSessions   int
		wantWarning    bool
		wantAttachWarn bool
	}{
		// A session: 3 MiB; opened attachments are within the routes'
		// held-part budgets (128 MiB each by default, x 10).
		{"defaults", func(*policy.Config) {}, 8 << 30, 400*3 + 2*128*10, 400, false, false},
		{"defaults on a 2 GiB machine", func(*policy.Config) {}, 2 << 30, 400*3 + 2*128*10, 400, true, false},
		{"route limits", func(c *policy.Config) { c.Inbound.MaxConnections, c.Outbound.MaxConnections = 50, 10 },
			8 << 30, 60*3 + 2*128*10, 60, false, false},
		{"a smaller budget", func(c *policy.Config) { c.Rewrite.Limits.MaxHeldBytes = 64 << 20 },
			8 << 30, 400*3 + 2*64*10, 400, false, true},
		{"a smaller budget and smaller attachments", func(c *policy.Config) {
			c.Rewrite.Limits.MaxHeldBytes = 64 << 20
			c.Rewrite.Attachments.Limits.MaxExpandedBytes, c.Rewrite.Attachments.Limits.MaxBytes = 16<<20, 8<<20
		}, 8 << 30, 400*3 + 2*64*10, 400, false, false},
		{"machine unknown", func(c *policy.Config) { c.SMTP.MaxConnections = 100000 }, 0, 200000*3 + 2*128*10, 200000, false, false},
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
		if got := strings.Contains(warn.String(), "warning: an attachment at rewrite.attachments.limits"); got != tt.wantAttachWarn {
			t.Errorf("%s: warning %q, want the attachment one: %v", tt.name, warn.String(), tt.wantAttachWarn)
		}
	}
}

// check-config states the worst case with the configuration it prints.
func TestCheckConfigStatesMemory(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("check-config")
	if code != 0 || !strings.Contains(out, "# memory, worst case: about 3760 MiB (400 sessions x 3 MiB, 2 routes x rewrite.limits.max_held_bytes x 10;") ||
		!strings.Contains(out, "max_held_bytes: 134217728") || strings.Contains(errOut, "warning: an attachment") {
		t.Fatalf("check-config on the quickstart: exit %d\n%s\n%s", code, out, errOut)
	}
}
