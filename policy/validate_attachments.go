package policy

import (
	"slices"
	"strings"
	"time"
)

// attachmentActions lists the actions each kind allows (the same table as
// rewrite/attach, which policy does not import): rewrite only where a
// reader exists, pass only where none does.
var attachmentActions = []struct {
	kind    string
	value   func(*Attachments) string
	allowed []string
}{
	{"office", func(a *Attachments) string { return a.Office }, []string{"rewrite", "strip", "refuse"}},
	{"archive", func(a *Attachments) string { return a.Archive }, []string{"rewrite", "strip", "refuse"}},
	{"text", func(a *Attachments) string { return a.Text }, []string{"rewrite", "strip", "refuse"}},
	{"signed", func(a *Attachments) string { return a.Signed }, []string{"rewrite", "strip", "refuse"}},
	{"pdf", func(a *Attachments) string { return a.PDF }, []string{"pass", "strip", "refuse"}},
	{"media", func(a *Attachments) string { return a.Media }, []string{"pass", "strip", "refuse"}},
	{"unreadable", func(a *Attachments) string { return a.Unreadable }, []string{"pass", "strip", "refuse"}},
}

func (c *Config) validateAttachments() error {
	a := &c.Rewrite.Attachments
	for _, k := range attachmentActions {
		if v := k.value(a); !slices.Contains(k.allowed, v) {
			why := ""
			if v == "rewrite" && k.kind == "pdf" {
				why = " (a PDF is read, never rewritten: a token is longer than the address and its fonts may lack the characters; strip it)"
			} else if v == "rewrite" {
				why = " (no reader rewrites " + k.kind + " content)"
			} else if v == "pass" {
				why = " (" + k.kind + " content can be read: rewrite it, or strip or refuse it)"
			}
			return c.fail("rewrite.attachments."+k.kind, "must be %s, got %q%s", strings.Join(k.allowed, ", "), v, why)
		}
	}
	if a.QuarantineRetention < time.Hour {
		return c.fail("rewrite.attachments.quarantine_retention", "must be at least 1h, got %v", a.QuarantineRetention)
	}
	l := a.Limits
	for _, lim := range []struct {
		field    string
		val, min int64
	}{
		{"max_bytes", l.MaxBytes, 64 << 10},
		{"max_depth", int64(l.MaxDepth), 1},
		{"max_members", int64(l.MaxMembers), 1},
		{"max_expanded_bytes", l.MaxExpandedBytes, 1 << 20},
		{"max_ratio", int64(l.MaxRatio), 2},
	} {
		if lim.val < lim.min {
			return c.fail("rewrite.attachments.limits."+lim.field, "must be at least %d, got %d", lim.min, lim.val)
		}
	}
	if l.MaxBytes > c.Rewrite.Limits.MaxMessageBytes {
		return c.fail("rewrite.attachments.limits.max_bytes", "must not exceed rewrite.limits.max_message_bytes (%d)", c.Rewrite.Limits.MaxMessageBytes)
	}
	if l.MaxDepth > 16 {
		return c.fail("rewrite.attachments.limits.max_depth", "must not exceed 16, got %d", l.MaxDepth)
	}
	return nil
}
