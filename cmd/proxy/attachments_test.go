package main

import (
	"testing"

	"github.com/tokenproxy/tokenproxy/policy"
	"github.com/tokenproxy/tokenproxy/rewrite/attach"
)

// TestAttachmentPolicyDefaults: the configuration's defaults (policy, and
// so quickstart.yaml) are the attachment rewriter's own.
func TestAttachmentPolicyDefaults(t *testing.T) {
	if got := attachmentPolicy(policy.Defaults().Rewrite.Attachments); got != attach.DefaultPolicy {
		t.Fatalf("config defaults %+v\nrewriter defaults %+v", got, attach.DefaultPolicy)
	}
}
