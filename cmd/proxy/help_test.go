package main

import (
	"strings"
	"testing"
)

// TestGroupHelp: every command group answers --help, -h and help with its
// subcommands on stdout and exit 0; a group alone or with an unknown
// subcommand lists them on stderr with exit 2.
func TestGroupHelp(t *testing.T) {
	c := newCLI(t)
	groups := map[string]bool{}
	for _, cmd := range commands() {
		if g, _, multi := strings.Cut(cmd.name, " "); multi {
			groups[g] = true
		}
	}
	for _, g := range []string{"compliance", "keys", "token", "audit", "store", "cluster"} {
		if !groups[g] {
			t.Errorf("group %q has no commands any more; update this test", g)
		}
	}
	type want struct {
		code   int
		stdout bool // the listing is on stdout (else stderr)
		msg    string
	}
	for g := range groups {
		tests := []struct {
			args []string
			want want
		}{
			{[]string{g, "--help"}, want{0, true, ""}},
			{[]string{g, "-h"}, want{0, true, ""}},
			{[]string{g, "-help"}, want{0, true, ""}},
			{[]string{g, "help"}, want{0, true, ""}},
			{[]string{"help", g}, want{0, true, ""}},
			{[]string{g, "--config", "/nonexistent.yaml", "--help"}, want{0, true, ""}},
			{[]string{g}, want{2, false, "a subcommand is needed"}},
			{[]string{g, "frobnicate"}, want{2, false, `unknown command "` + g + ` frobnicate"`}},
		}
		for _, tt := range tests {
			code, out, errs := c.run(tt.args...)
			listing := errs
			if tt.want.stdout {
				listing = out
			}
			if code != tt.want.code || !strings.Contains(errs, tt.want.msg) {
				t.Errorf("proxy %v: exit %d, want %d (stderr should hold %q)\n%s%s", tt.args, code, tt.want.code, tt.want.msg, out, errs)
				continue
			}
			for _, cmd := range groupCommands(g) {
				if !strings.Contains(listing, cmd.name) || !strings.Contains(listing, cmd.summary) {
					t.Errorf("proxy %v: listing lacks %q:\n%s", tt.args, cmd.name, listing)
				}
			}
		}
	}
}

// TestTopLevelHelp: `proxy help` and `proxy --help` list every command on
// stdout with exit 0; help for a single command points at its --help.
func TestTopLevelHelp(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"help"}, 0, "commands:"},
		{[]string{"--help"}, 0, "commands:"},
		{[]string{"-h"}, 0, "commands:"},
		{[]string{"help", "serve"}, 0, "proxy serve --help"},
		{[]string{"help", "compliance", "erase"}, 0, "compliance erase"},
		{[]string{"help", "frobnicate"}, 2, ""},
	}
	for _, tt := range tests {
		code, out, errs := c.run(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Errorf("proxy %v: exit %d, want %d with %q on stdout\n%s%s", tt.args, code, tt.code, tt.out, out, errs)
		}
	}
	_, out, _ := c.run("help")
	for _, cmd := range commands() {
		if !strings.Contains(out, cmd.name) {
			t.Errorf("proxy help lacks %q", cmd.name)
		}
	}
}
