package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
)

func TestAttachmentsValidation(t *testing.T) {
	for _, tt := range []struct{ extra, field, reason string }{
		{"rewrite: {attachments: {office: pass}}", "rewrite.attachments.office", "can be read"},
		{"rewrite: {attachments: {pdf: rewrite}}", "rewrite.attachments.pdf", "never rewritten"},
		{"rewrite: {attachments: {unreadable: rewrite}}", "rewrite.attachments.unreadable", "pass, strip, refuse"},
		{"rewrite: {attachments: {archive: drop}}", "rewrite.attachments.archive", `got "drop"`},
		{"rewrite: {attachments: {signed: ''}}", "rewrite.attachments.signed", "rewrite, strip, refuse"},
		{"rewrite: {attachments: {quarantine_retention: 10m}}", "rewrite.attachments.quarantine_retention", "at least 1h"},
		{"rewrite: {attachments: {limits: {max_depth: 0}}}", "rewrite.attachments.limits.max_depth", "at least 1"},
		{"rewrite: {attachments: {limits: {max_depth: 99}}}", "rewrite.attachments.limits.max_depth", "must not exceed 16"},
		{"rewrite: {attachments: {limits: {max_ratio: 1}}}", "rewrite.attachments.limits.max_ratio", "at least 2"},
		{"rewrite: {attachments: {limits: {max_bytes: 999999999}}}", "rewrite.attachments.limits.max_bytes", "max_message_bytes"},
		{"rewrite: {attachments: {limits: {max_expanded_bytes: 1000}}}", "rewrite.attachments.limits.max_expanded_bytes", "at least"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			_, err := policy.Parse([]byte(base+tt.extra), "test.yaml")
			var fe *policy.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("err = %v, want field %s and reason containing %q", err, tt.field, tt.reason)
			}
		})
	}
	c, err := policy.Parse([]byte(base+"rewrite: {attachments: {office: strip, pdf: refuse, unreadable: refuse}}"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Rewrite.Attachments; a.Office != "strip" || a.PDF != "refuse" || a.Archive != "rewrite" || a.Limits.MaxRatio != 100 {
		t.Fatalf("parsed %+v", a)
	}
}
