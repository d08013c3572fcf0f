package smtp

import (
	"strings"
	"testing"

	"github.com/tokenproxy/tokenproxy/rewrite/header"
)

// TestRewriteSenderFields: only From, Sender and Reply-To change; other
// fields keep their bytes and place; a long rewritten list is folded
// within RFC 5322's 998 octets.
func TestRewriteSenderFields(t *testing.T) {
	toPublic := func(string) header.MailboxFunc {
		return func(m header.Mailbox) (header.Mailbox, bool, error) {
			if m.Addr == "support@crm.example" {
				m.Addr = "support@company.example"
				return m, true, nil
			}
			return m, false, nil
		}
	}
	var many []string
	for range 60 {
		many = append(many, "Support <support@crm.example>")
	}
	tests := []struct{ name, in, want string }{
		{"from", "From: Support <support@crm.example>\r\nTo: support@crm.example\r\n\r\n",
			"From: Support <support@company.example>\r\nTo: support@crm.example\r\n\r\n"},
		{"folded reply-to", "Subject: x\r\nReply-To:\r\n support@crm.example\r\n\r\n",
			"Subject: x\r\nReply-To:\r\n support@company.example\r\n\r\n"}, // the folding is kept
		{"untouched", "Sender: other@company.example\r\n\r\n", "Sender: other@company.example\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := rewriteSenderFields([]byte(tt.in), toPublic)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
	got, _, err := rewriteSenderFields([]byte("From: "+strings.Join(many, ", ")+"\r\n\r\n"), toPublic)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(got), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d octets", len(line))
		}
	}
	if strings.Count(string(got), "support@company.example") != 60 {
		t.Fatalf("not every mailbox rewritten:\n%s", got)
	}
}
